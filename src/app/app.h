// The embedded system in one process: gateway + upload service + dithering service, over
// SQLite, files under the data directory and the in-process bus. Config::roles selects the parts:
// `ditherd` runs all of them; `api-gateway` only the gateway (in front of services elsewhere).
// The two services only run together until a shared event bus exists (the distributed mode).
// Everything is built and wired in App::start() (wire-up happens here and nowhere else); main()
// only loads the configuration, starts, waits for a signal and stops.
//
//   App app(config);
//   app.start();        // throws std::runtime_error when something cannot start
//   app.run();          // serves until stop() (e.g. from a signal handler)
#pragma once

#include <memory>

#include "app/config.h"

namespace dither {

class App {
 public:
  explicit App(Config config);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  void start();
  // Runs the servers on IO_THREADS threads until stop(); SIGINT and SIGTERM call stop().
  void run();
  // Graceful: stop accepting, finish requests being handled and dithers being made, flush the
  // outboxes as far as possible. Anything left is resumed at the next start.
  void stop();

 private:
  // Stops accepting and lets running requests finish (at most 10 s); run() then returns.
  void begin_stop();
  void start_services();
  void start_gateway();

  struct Parts;
  Config config_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace dither
