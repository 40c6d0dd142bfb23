/* test_vae_weights.c: the VAE checkpoint binder's renamings (vae_weights.c):
 * diffusers' names to the LDM/CompVis ones, both directions of the decoder's
 * reversed level numbering, and names that have no LDM form. The binding of
 * whole files in every naming, prefix and dtype is tests/e2e/vae_vs_reference.sh's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vae_weights.h"

static void expect(const char *d, int levels, const char *want) {
  char out[320];
  int ok = vae_ldm_name(d, levels, out, sizeof out);
  if (!want) {
    if (ok) fail_msg("%s: expected no LDM name, got %s", d, out);
    return;
  }
  if (!ok) fail_msg("%s: no LDM name, expected %s", d, want);
  if (strcmp(out, want) != 0) fail_msg("%s -> %s, expected %s", d, out, want);
}

static void test_ldm_names(void **state) {
  (void)state;
  expect("decoder.up_blocks.0.resnets.2.conv1.weight", 4, "decoder.up.3.block.2.conv1.weight");
  expect("decoder.up_blocks.3.resnets.0.conv_shortcut.bias", 4, "decoder.up.0.block.0.nin_shortcut.bias");
  expect("decoder.up_blocks.1.upsamplers.0.conv.weight", 4, "decoder.up.2.upsample.conv.weight");
  expect("encoder.down_blocks.1.resnets.0.conv_shortcut.weight", 4, "encoder.down.1.block.0.nin_shortcut.weight");
  expect("encoder.down_blocks.2.downsamplers.0.conv.bias", 4, "encoder.down.2.downsample.conv.bias");
  expect("decoder.mid_block.resnets.1.norm2.weight", 4, "decoder.mid.block_2.norm2.weight");
  expect("encoder.mid_block.attentions.0.group_norm.bias", 4, "encoder.mid.attn_1.norm.bias");
  expect("decoder.mid_block.attentions.0.to_q.weight", 4, "decoder.mid.attn_1.q.weight");
  expect("decoder.mid_block.attentions.0.to_out.0.bias", 4, "decoder.mid.attn_1.proj_out.bias");
  expect("decoder.conv_norm_out.weight", 4, "decoder.norm_out.weight");
  expect("encoder.conv_in.weight", 4, "encoder.conv_in.weight");
  expect("post_quant_conv.bias", 4, "post_quant_conv.bias");
  expect("decoder.up_blocks.1.resnets.0.conv1.weight", 2, "decoder.up.0.block.0.conv1.weight"); /* 2 levels */
  expect("decoder.up_blocks.4.resnets.0.conv1.weight", 4, NULL); /* past the levels */
  expect("decoder.mid_block.resnets.2.conv1.weight", 4, NULL);
  expect("pos_embed", 4, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_ldm_names)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
