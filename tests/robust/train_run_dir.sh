#!/usr/bin/env bash
# train_run_dir.sh: dit train never silently starts over inside an old run,
# and a failed start leaves nothing behind (issue 16): -o with a non-empty
# folder is refused unless --overwrite (which removes the old run's files
# and only those); --resume needs a checkpoint and creates nothing; a failed
# -o leaves no folder; --resume and --overwrite do not go together; loss.tsv
# after a resume holds each step once.
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
robust_dataset
cd "$work"
"$ditc" "$root/specs/tests/tiny_pixel.dit" --mode train --batch 4 -o t.plan
t=("$dit" train t.plan --data px.ditdata --ckpt-every 2)
listing() { (cd "$1" && find . -type f | sort); }

"${t[@]}" --steps 4 -o run --sample-plan px.plan --sample-every 2 --sample-steps 5 >/dev/null
before=$(cd run && find . -type f -exec sha256sum {} + | sort)
expect_fail 1 "run already holds files (a run?): --resume run continues it, --overwrite starts over in it" \
  "${t[@]}" --steps 2 -o run
[ "$before" = "$(cd run && find . -type f -exec sha256sum {} + | sort)" ] || { echo "FAIL: the refused -o changed run/"; exit 1; }

# --overwrite: the old run's files go (checkpoints 2 and 4, samples, log, loss), a user's file stays
echo keep >run/notes.txt
echo keep >run/checkpoints/README
"${t[@]}" --steps 2 -o run --overwrite >/dev/null
got=$(listing run)
want=$(printf '%s\n' ./checkpoints/0000002-ema.safetensors ./checkpoints/0000002.pt ./checkpoints/0000002.safetensors \
  ./checkpoints/README ./checkpoints/latest ./log.txt ./loss.tsv ./notes.txt | sort)
[ "$got" = "$want" ] || { echo "FAIL: after --overwrite run/ holds:"; echo "$got"; exit 1; }
[ "$(cut -f1 run/loss.tsv | tr '\n' ' ')" = "1 2 " ] || { echo "FAIL: loss.tsv after --overwrite"; cat run/loss.tsv; exit 1; }
grep -c "^training" run/log.txt | grep -qx 1 || { echo "FAIL: log.txt kept the old run"; exit 1; }

# a run folder with files but no checkpoint cannot be resumed; --resume of nothing creates nothing
mkdir notarun && echo x >notarun/file
expect_fail 1 "notarun: no checkpoint to resume from (checkpoints/latest is missing)" "${t[@]}" --resume notarun
expect_fail 1 "nonexist: no such run folder to resume" "${t[@]}" --resume nonexist
[ ! -e nonexist ] || { echo "FAIL: --resume nonexist created nonexist/"; exit 1; }
expect_fail 2 "--resume" "${t[@]}" --resume run --overwrite
expect_fail 2 "" "${t[@]}" --resume run -o run2
[ ! -e run2 ] || { echo "FAIL: run2 created"; exit 1; }

# a failed -o (bad data, bad init weights, a file where the folder goes) leaves no folder
echo junk >junk.ditdata
expect_fail 1 "junk.ditdata" "$dit" train t.plan --data junk.ditdata -o fail1
expect_fail 1 "nan.st" bash -c "$py '$root/tests/robust/st_edit.py' px.safetensors nan.st pos_embed nan 0 &&
  '$dit' train t.plan --data px.ditdata --weights nan.st -o fail2"
echo file >afile
expect_fail 1 "afile" "${t[@]}" -o afile
expect_fail 1 "" "${t[@]}" -o nodir/run
for d in fail1 fail2 nodir; do [ ! -e "$d" ] || { echo "FAIL: a failed dit train left $d/"; exit 1; }; done
[ "$(cat afile)" = file ] || { echo "FAIL: afile changed"; exit 1; }

# resume: each step once in loss.tsv, as a straight run; no temporaries
"${t[@]}" --steps 6 -o straight >/dev/null
"${t[@]}" --steps 3 -o split >/dev/null   # checkpoints at 2 and 3
printf '4\t9.99\n5\t9.99\n' >>split/loss.tsv # rows past the checkpoint, as a kill after step 5 leaves them
"${t[@]}" --steps 6 --resume split >/dev/null
cmp straight/loss.tsv split/loss.tsv || { echo "FAIL: loss.tsv after a resume"; paste straight/loss.tsv split/loss.tsv; exit 1; }
for f in 0000006.safetensors 0000006-ema.safetensors 0000006.pt; do
  cmp "straight/checkpoints/$f" "split/checkpoints/$f" || { echo "FAIL: $f differs after a resume"; exit 1; }
done
no_stale_tmp "$work"
echo "ok: run folders"
