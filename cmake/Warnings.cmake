# One place for warning flags. dit_warnings(target) applies them to our own code;
# generated Flex/Bison sources get the same flags minus the ones they cannot meet.
set(DIT_WARNING_FLAGS
  -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wvla -Wformat=2 -Wundef -Wcast-qual -Wpointer-arith -Wswitch-enum)
if(DIT_WERROR)
  list(APPEND DIT_WARNING_FLAGS -Werror)
endif()

function(dit_warnings target)
  target_compile_options(${target} PRIVATE ${DIT_WARNING_FLAGS})
endfunction()
