# ditrtConfig.cmake: find_package(ditrt) gives the imported target ditrt::ditrt_shared
# (libditrt.so with its public headers), installed by cmake --install.
include(${CMAKE_CURRENT_LIST_DIR}/ditrtTargets.cmake)
if(NOT TARGET ditrt::ditrt)
  add_library(ditrt::ditrt INTERFACE IMPORTED)
  set_target_properties(ditrt::ditrt PROPERTIES INTERFACE_LINK_LIBRARIES ditrt::ditrt_shared)
endif()
