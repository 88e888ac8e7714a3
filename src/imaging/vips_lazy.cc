#define DITHER_VIPS_FILLING_THE_TABLE
#include "imaging/vips_lazy.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace dither::imaging::internal {

std::atomic<const VipsFunctions*> loaded_vips_functions{nullptr};

namespace {

struct Loading {
  VipsFunctions table;
  std::string error;  // empty: loaded
};

// DITHER_VIPS_SONAME is libvips' shared object name as the build found it ("libvips.so.42"): the
// library an ordinary link would have recorded. It is looked for where the dynamic linker looks,
// then in the folder the build found it in (DITHER_VIPS_DIR), as an ordinary link's run path
// would have it for a libvips outside the system's folders.
Loading load() {
  Loading loading;
  // RTLD_GLOBAL: as a linked library would be, for what libvips itself loads later.
  void* library = dlopen(DITHER_VIPS_SONAME, RTLD_NOW | RTLD_GLOBAL);
  if (library == nullptr)
    library = dlopen(DITHER_VIPS_DIR "/" DITHER_VIPS_SONAME, RTLD_NOW | RTLD_GLOBAL);
  if (library == nullptr) {
    const char* why = dlerror();
    loading.error = why != nullptr ? why : "cannot load " DITHER_VIPS_SONAME;
    return loading;
  }
  // Never closed: libvips cannot be unloaded (its GObject types stay registered).
#define DITHER_VIPS_LOOK_UP(name)                                                               \
  if (loading.error.empty()) {                                                                  \
    loading.table.name = reinterpret_cast<decltype(loading.table.name)>(dlsym(library, #name)); \
    if (loading.table.name == nullptr) loading.error = DITHER_VIPS_SONAME " lacks " #name;      \
  }
  DITHER_VIPS_FUNCTIONS(DITHER_VIPS_LOOK_UP)
#undef DITHER_VIPS_LOOK_UP
  return loading;
}

}  // namespace

const VipsFunctions* try_load_vips_functions(std::string* why) {
  static const Loading loading = load();  // once, under the compiler's guard
  if (!loading.error.empty()) {
    if (why != nullptr) *why = loading.error;
    return nullptr;
  }
  loaded_vips_functions.store(&loading.table, std::memory_order_release);
  return &loading.table;
}

const VipsFunctions& load_vips_functions() {
  std::string why;
  const VipsFunctions* table = try_load_vips_functions(&why);
  if (table == nullptr) {
    std::fprintf(stderr, "dither: cannot load libvips: %s\n", why.c_str());
    std::abort();
  }
  return *table;
}

}  // namespace dither::imaging::internal
