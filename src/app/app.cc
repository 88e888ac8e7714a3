#include "app/app.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <optional>
#include <stdexcept>
#include <thread>

#include "adapters/fs/fs_blob_store.h"
#include "adapters/inproc/in_process_bus.h"
#include "adapters/sqlite/sqlite_dither_repository.h"
#include "adapters/sqlite/sqlite_image_repository.h"
#include "gateway/gateway.h"
#include "http/server.h"
#include "imaging/codec.h"
#include "messaging/event_log.h"
#include "messaging/outbox_relay.h"
#include "services/dither/dither_api.h"
#include "services/dither/dither_service.h"
#include "services/dither/dither_workers.h"
#include "services/upload/upload_api.h"
#include "services/upload/upload_service.h"

namespace dither {

namespace asio = boost::asio;

struct App::Parts {
  asio::io_context ioc;
  asio::thread_pool blocking;
  std::unique_ptr<ImageRepository> images;
  std::unique_ptr<DitherRepository> dithers;
  std::unique_ptr<FsBlobStore> blobs;
  std::unique_ptr<EventLog> event_log;
  std::unique_ptr<InProcessBus> bus;
  std::unique_ptr<UploadService> upload;
  std::unique_ptr<DitherService> dither;
  std::unique_ptr<OutboxRelay> upload_relay;
  std::unique_ptr<OutboxRelay> dither_relay;
  std::unique_ptr<DitherWorkers> workers;
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<http::Server> upload_server;
  std::unique_ptr<http::Server> dither_server;
  std::unique_ptr<http::Server> gateway_server;
  std::optional<asio::signal_set> signals;

  explicit Parts(int blocking_threads) : blocking(static_cast<size_t>(blocking_threads)) {}
};

namespace {

template <class T>
T must(Result<T> r, std::string_view what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message);
  return std::move(*r);
}

void must(const Status& s, std::string_view what) {
  if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message);
}

}  // namespace

App::App(Config config) : config_(std::move(config)) {}

App::~App() { stop(); }

void App::start() {
  spdlog::set_level(spdlog::level::from_str(config_.log_level));
  for (const auto& [name, value] : describe(config_)) spdlog::info("config {}={}", name, value);
  const Roles& roles = config_.roles;
  if (roles.upload != roles.dither) {
    // The in-process bus only connects parts of one process; alone, a service's messages would
    // reach nobody and be dropped from its outbox.
    throw std::runtime_error(
        "the upload and dithering services exchange messages: run them in one process (ditherd) "
        "until a shared event bus (Kafka) is configured");
  }
  const bool services = roles.upload && roles.dither;

  parts_ = std::make_unique<Parts>(config_.blocking_threads);
  Parts& p = *parts_;
  if (services) {
    must(imaging::init(), "libvips");
    std::filesystem::create_directories(config_.data_dir);
    start_services();
  }
  if (roles.gateway) start_gateway();

  p.signals.emplace(p.ioc, SIGINT, SIGTERM);
  p.signals->async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: stopping", signal);
    parts_->ioc.stop();
  });
}

void App::start_services() {
  Parts& p = *parts_;
  // Adapters.
  p.images = must(open_sqlite_image_repository((config_.data_dir / "upload.db").string()),
                  "upload database");
  p.dithers = must(open_sqlite_dither_repository((config_.data_dir / "dither.db").string()),
                   "dither database");
  p.blobs = std::make_unique<FsBlobStore>(config_.data_dir / "files",
                                          config_.public_base_url + "/files/");
  if (const int n = p.blobs->remove_temporaries(); n > 0) {
    spdlog::info("removed {} partial files left by a crash", n);
  }
  p.bus = std::make_unique<InProcessBus>([](const Message& m) {
    spdlog::error("dead letter on {}: {} {} ({})", m.topic, m.message_type(), m.message_id(),
                  m.header("dead_letter_reason").value_or(""));
  });

  // Services, their outbox relays and the dither workers.
  p.upload = std::make_unique<UploadService>(*p.images, *p.blobs, config_.topics, config_.limits,
                                             [&p] { p.upload_relay->notify(); });
  p.dither = std::make_unique<DitherService>(
      *p.dithers, *p.blobs, config_.topics, config_.limits, config_.auto_dither,
      [&p] { p.dither_relay->notify(); }, [&p] { p.workers->notify(); });
  p.upload_relay = std::make_unique<OutboxRelay>(*p.images, *p.bus, "upload");
  p.dither_relay = std::make_unique<OutboxRelay>(*p.dithers, *p.bus, "dither");
  p.workers = std::make_unique<DitherWorkers>(*p.dither, *p.dithers, config_.dither_workers);

  if (Result<int> orphans = p.upload->remove_orphan_originals(); !orphans) {
    spdlog::warn("cannot sweep orphan originals: {}", orphans.error().message);
  } else if (*orphans > 0) {
    spdlog::info("removed {} originals without a record (left by a crash)", *orphans);
  }

  // Subscriptions: each service consumes the other's topic.
  p.bus->subscribe({config_.topics.image, "dither-service",
                    [&p](const Message& m) { return p.dither->on_image_message(m); }});
  p.bus->subscribe({config_.topics.dither, "upload-service",
                    [&p](const Message& m) { return p.upload->on_dither_message(m); }});
  if (!config_.event_log.empty()) {
    p.event_log = std::make_unique<EventLog>(config_.event_log);
    for (const std::string& topic :
         {config_.topics.image, config_.topics.dither, Topics::dead_letter(config_.topics.image),
          Topics::dead_letter(config_.topics.dither)}) {
      p.bus->subscribe(
          {topic, "event-log", [&p](const Message& m) { return p.event_log->append(m); }});
    }
  }
  must(p.bus->start(), "event bus");
  p.upload_relay->start();
  p.dither_relay->start();
  p.workers->start();

  // The services' HTTP servers, on loopback only.
  http::ServerOptions upload_options;
  upload_options.port = config_.upload_port;
  upload_options.body_limit = upload_body_limit(config_.limits);
  upload_options.server_name = "dither-upload";
  p.upload_server =
      std::make_unique<http::Server>(p.ioc, p.blocking, upload_routes(*p.upload), upload_options);
  must(p.upload_server->listen(), "upload service");
  config_.upload_port = p.upload_server->port();

  http::ServerOptions dither_options;
  dither_options.port = config_.dither_port;
  dither_options.body_limit = 64 * 1024;
  dither_options.server_name = "dither-dither";
  p.dither_server =
      std::make_unique<http::Server>(p.ioc, p.blocking, dither_routes(*p.dither), dither_options);
  must(p.dither_server->listen(), "dithering service");
  config_.dither_port = p.dither_server->port();
  spdlog::info("upload service on 127.0.0.1:{}, dithering service on 127.0.0.1:{}, data in {}",
               config_.upload_port, config_.dither_port, config_.data_dir.string());
}

void App::start_gateway() {
  Parts& p = *parts_;
  GatewayOptions gateway_options;
  gateway_options.upload.host = config_.upload_host;
  gateway_options.upload.port = config_.upload_port;
  gateway_options.dither.host = config_.dither_host;
  gateway_options.dither.port = config_.dither_port;
  // Stored files are served from the data directory (the embedded blob store's root).
  gateway_options.files_root = config_.data_dir / "files";
  p.gateway = std::make_unique<Gateway>(p.ioc.get_executor(), gateway_options);
  http::ServerOptions public_options;
  public_options.host = config_.host;
  public_options.port = config_.port;
  public_options.body_limit = upload_body_limit(config_.limits);
  public_options.max_in_flight = config_.max_in_flight;
  public_options.server_name = "dither";
  p.gateway_server =
      std::make_unique<http::Server>(p.ioc, p.blocking, p.gateway->routes(), public_options);
  must(p.gateway_server->listen(), "gateway");
  spdlog::info("gateway listening on http://{}:{}", config_.host, p.gateway_server->port());
}

void App::run() {
  Parts& p = *parts_;
  const unsigned n = config_.io_threads > 0 ? static_cast<unsigned>(config_.io_threads)
                                            : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i) threads.emplace_back([&p] { p.ioc.run(); });
  p.ioc.run();
  for (auto& t : threads) t.join();
}

void App::stop() {
  if (!parts_) return;
  Parts& p = *parts_;
  if (p.gateway_server) p.gateway_server->stop();
  if (p.upload_server) p.upload_server->stop();
  if (p.dither_server) p.dither_server->stop();
  if (p.gateway) p.gateway->close();
  p.ioc.stop();
  p.blocking.join();
  if (p.workers) p.workers->stop();
  if (p.upload_relay) p.upload_relay->stop();
  if (p.dither_relay) p.dither_relay->stop();
  if (p.bus) p.bus->stop();
  parts_.reset();
  spdlog::info("stopped");
}

}  // namespace dither
