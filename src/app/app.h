// One program's parts, built from the configuration: the gateway and the upload, dithering and
// notification services. Config::roles selects them: `ditherd` runs all of them in one process
// (by default over SQLite, files under the data directory and the in-process bus);
// `api-gateway`, `upload-service`, `dithering-service` and `notification-service` run one each,
// sharing Kafka, PostgreSQL and S3 (docs/DISTRIBUTED.md). Services that exchange messages over the
// in-process bus must run in one process.
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

struct GatewayOptions;

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
  void open_adapters();
  void start_upload_service();
  void start_dithering_service();
  void start_notification_service();
  void subscribe_and_start();
  void serve_services();
  void start_gateway();
  void check_readiness();
  void connect_gateway(GatewayOptions& options);
  void gateway_storage(GatewayOptions& options);
  void gateway_access(GatewayOptions& options);

  struct Parts;
  Config config_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace dither
