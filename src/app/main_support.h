// What every program's main does: load the configuration, start the chosen parts, serve until
// SIGINT/SIGTERM, stop. Exit status 2 for a configuration error, 1 for a start-up failure.
#pragma once

#include "app/config.h"

namespace dither {

int run_main(Roles roles);

}  // namespace dither
