#include "app/app.h"

#include <glib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include "adapters/http_fetch/curl_url_fetcher.h"
#include "app/adapters.h"
#include "auth/link_signer.h"
#include "gateway/access.h"
#include "gateway/gateway.h"
#include "http/blocking_pool.h"
#include "http/server.h"
#include "imaging/codec.h"
#include "messaging/event_log.h"
#include "messaging/messaging_metrics.h"
#include "messaging/outbox_relay.h"
#include "observability/http_metrics.h"
#include "observability/listener.h"
#include "observability/logging.h"
#include "observability/metrics.h"
#include "observability/tracing.h"
#include "services/common/caller.h"
#include "services/common/health.h"
#include "services/common/paging.h"
#include "services/dither/dither_api.h"
#include "services/dither/dither_service.h"
#include "services/dither/dither_workers.h"
#include "services/notify/notification_service.h"
#include "services/notify/notify_api.h"
#include "services/upload/upload_api.h"
#include "services/upload/upload_service.h"

namespace dither {

namespace asio = boost::asio;

struct App::Parts {
  // One io_context per I/O thread (see http::Server): connections never change threads.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::io_context*> context_list;
  http::BlockingPool blocking;
  // METRICS_ADDRESS: the process's metrics and what each HTTP server records into them. Declared
  // before the servers and services, which record until they are gone; their listener is the
  // last member (below), gone first, so that no scrape reads a part being destroyed.
  std::unique_ptr<observability::Metrics> metrics;
  std::deque<observability::HttpMetrics> http_metrics;
  // OTEL_EXPORTER_OTLP_*: where the servers' and services' spans go (docs/TRACING.md); null: off.
  // Declared before them: they end spans until they are gone.
  std::unique_ptr<observability::Tracer> tracer;
  // What the bus and the outbox relays report (null without metrics); outlives both.
  std::unique_ptr<MessagingMetrics> messaging_metrics;
  std::unique_ptr<ImageRepository> images;
  std::unique_ptr<DitherRepository> dithers;
  // An upload service without the dithering service in its process, on PostgreSQL: reads the
  // dither queue's depth from the dithering service's schema (MAX_PENDING_DITHERS).
  std::unique_ptr<DitherRepository> queue_probe;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<EventLog> event_log;
  std::unique_ptr<EventBus> bus;
  std::unique_ptr<UrlFetcher> fetcher;
  std::unique_ptr<UploadService> upload;
  std::unique_ptr<DitherService> dither;
  std::unique_ptr<OutboxRelay> upload_relay;
  std::unique_ptr<OutboxRelay> dither_relay;
  std::unique_ptr<DitherWorkers> workers;
  std::unique_ptr<NotificationRepository> notify_store;
  std::unique_ptr<MailSender> mail;
  std::unique_ptr<NotificationService> notify;
  std::unique_ptr<NotificationSenders> notify_senders;
  std::unique_ptr<http::Server> notify_server;
  std::unique_ptr<IdentityStore> identity;
  std::unique_ptr<Access> access;
  std::unique_ptr<RateLimits> limits;
  std::unique_ptr<LinkSigner> links;
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<http::Server> upload_server;
  std::unique_ptr<http::Server> dither_server;
  std::unique_ptr<http::Server> gateway_server;
  std::optional<asio::signal_set> signals;
  using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::optional<WorkGuard>> keep_running;  // one per context, until stopping
  std::unique_ptr<observability::MetricsListener> metrics_listener;  // see `metrics`
  // GET /health/ready of every server of the process: the parts above it (declared after them,
  // so it is gone before they are: its checks hold references to them).
  Readiness readiness;

  Parts(unsigned io_threads, int blocking_threads, int blocking_queue, int blocking_per_client)
      : blocking(blocking_threads, blocking_queue, blocking_per_client) {
    for (unsigned i = 0; i < io_threads; ++i) {
      contexts.push_back(std::make_unique<asio::io_context>(1));
      context_list.push_back(contexts.back().get());
      keep_running.emplace_back(asio::make_work_guard(*contexts.back()));
    }
  }
  asio::io_context& main_context() { return *contexts.front(); }
  // Where the HTTP server called `server` records its requests: nowhere without METRICS_ADDRESS.
  observability::HttpMetrics* http_metrics_for(std::string server) {
    if (!metrics) return nullptr;
    return &http_metrics.emplace_back(*metrics, std::move(server));
  }

  std::atomic<bool> stopping{false};
  std::thread grace;  // forces the stop when requests do not finish in time
  std::mutex grace_mutex;
  std::condition_variable grace_done;
  bool grace_over = false;  // guarded by grace_mutex
  void stop_contexts() {
    for (auto& context : contexts) context->stop();
  }
  // Runs what is left on the (stopped) contexts, so that every coroutine ends and releases what it
  // holds while all contexts are still alive; then they can be destroyed in any order.
  void drain_contexts() {
    for (int round = 0; round < 100; ++round) {
      size_t ran = 0;
      for (auto& context : contexts) {
        context->restart();
        ran += context->poll();
      }
      if (ran == 0) return;
    }
  }
};

namespace {

// Dither requests carry at most a JSON object of options.
constexpr uint64_t kDitherBodyLimit = 64 * 1024;

template <class T>
T must(Result<T> r, std::string_view what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message);
  return std::move(*r);
}

// Calls `open` until it succeeds or fails with something other than kUnavailable, for at most
// `patience`: a service started while its database, broker or bucket is still coming up (or down
// for a moment) waits for it instead of exiting.
template <class Open>
auto patiently(Open open, std::string_view what, std::chrono::seconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (int attempt = 1;; ++attempt) {
    auto r = open();
    if (r || r.error().kind != ErrorKind::kUnavailable ||
        std::chrono::steady_clock::now() >= deadline) {
      return r;
    }
    spdlog::warn("{} is unavailable (attempt {}), retrying: {}", what, attempt, r.error().message);
    std::this_thread::sleep_for(std::chrono::seconds{1});
  }
}

void must(const Status& s, std::string_view what) {
  if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message);
}

// libvips warns through GLib's log, which writes to standard error in a format of its own (a
// truncated upload: "VIPS-WARNING **: error in tile 0 x 0"); with LOG_FORMAT=json those lines go
// through spdlog instead, so that every line stays one JSON object.
void log_glib_message(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer) {
  // Info and debug: GLib shows them only when asked (G_MESSAGES_DEBUG); here with LOG_LEVEL=debug.
  spdlog::level::level_enum to = spdlog::level::debug;
  if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) != 0) {
    to = spdlog::level::err;
  } else if ((level & G_LOG_LEVEL_WARNING) != 0) {
    to = spdlog::level::warn;
  } else if ((level & G_LOG_LEVEL_MESSAGE) != 0) {
    to = spdlog::level::info;
  }
  spdlog::log(to, "{}: {}", domain != nullptr ? domain : "glib", message != nullptr ? message : "");
}

// A consumer that logs under the message's trace: what it logs while handling the message carries
// the trace id of the request that caused it (docs/LOGGING.md).
MessageHandler in_message_context(MessageHandler handler) {
  return [handler = std::move(handler)](const Message& m) {
    const observability::ScopedLogContext scope(
        observability::log_context_from("", m.header(kHeaderTraceparent).value_or("")));
    return handler(m);
  };
}

// dither_trace_spans_total{outcome}: what became of the spans this process recorded (the tracer
// counts them; the counters catch up at each scrape, which the registry runs one at a time).
void count_spans(observability::Metrics& metrics, const observability::Tracer& tracer) {
  const observability::CounterFamily spans = metrics.counter(
      "trace_spans_total",
      "Spans recorded for export, by outcome: exported, dropped (the queue was full), failed (the "
      "collector refused them or did not answer).",
      {"outcome"});
  struct Outcome {
    prometheus::Counter& counter;
    uint64_t observability::Tracer::Stats::*field;
    uint64_t seen = 0;
  };
  auto outcomes = std::make_shared<std::vector<Outcome>>(
      std::vector<Outcome>{{spans.with({"exported"}), &observability::Tracer::Stats::exported},
                           {spans.with({"dropped"}), &observability::Tracer::Stats::dropped},
                           {spans.with({"failed"}), &observability::Tracer::Stats::failed}});
  metrics.on_scrape([&tracer, outcomes] {
    const observability::Tracer::Stats stats = tracer.stats();
    for (Outcome& o : *outcomes) {
      const uint64_t now = stats.*(o.field);
      o.counter.Increment(static_cast<double>(now - o.seen));
      o.seen = now;
    }
  });
}

}  // namespace

App::App(Config config) : config_(std::move(config)) {}

App::~App() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("stopping failed: {}", e.what());
  }
}

void App::start() {
  observability::configure_logging({
      .format = observability::parse_log_format(config_.log_format)
                    .value_or(observability::LogFormat::kText),
      .program = program_name(config_.roles),
      .level = config_.log_level,
      .access_log = config_.access_log,
  });
  if (config_.log_format == "json") g_log_set_default_handler(log_glib_message, nullptr);
  for (const auto& [name, value] : describe(config_)) spdlog::info("config {}={}", name, value);
  const Roles& roles = config_.roles;
  const bool services = roles.upload || roles.dither || roles.notify;
  if (services && !(roles.upload && roles.dither && roles.notify) && !config_.kafka.enabled()) {
    // The in-process bus only connects parts of one process; alone, a service's messages would
    // reach nobody.
    throw std::runtime_error(
        "the services exchange messages: run them in one process (ditherd) or set KAFKA_SERVER "
        "so that they share a Kafka cluster");
  }
  if (services) spdlog::info("adapters: {}", describe_adapters(config_));

  // Default: one event loop per core, as nginx's `worker_processes auto`. The dithering workers
  // run niced (DITHER_NICE), so requests take the CPU first. Measured on 2 cores: the gateway in
  // process serves 1.01x the best nginx's requests per second with a loop per core and about
  // 0.8x with one, which leaves the second core to wrk alone (docs/BENCHMARKS.md, "Services").
  const unsigned io_threads = config_.io_threads > 0
                                  ? static_cast<unsigned>(config_.io_threads)
                                  : std::max(1u, std::thread::hardware_concurrency());
  parts_ = std::make_unique<Parts>(io_threads, config_.blocking_threads, config_.blocking_queue,
                                   config_.blocking_per_client);
  Parts& p = *parts_;
  if (!config_.metrics_address.empty()) {
    p.metrics = std::make_unique<observability::Metrics>(DITHER_VERSION);
    p.metrics_listener =
        must(observability::serve_metrics(*p.metrics, config_.metrics_address), "METRICS_ADDRESS");
    spdlog::info("metrics on http://{}/metrics (port {})", config_.metrics_address,
                 p.metrics_listener->port());
  }
  if (p.metrics && config_.postgres.enabled()) watch_database_pools(*p.metrics);
  if (!config_.tracing.endpoint.empty()) {
    observability::TracerOptions tracing = config_.tracing;
    if (tracing.service_name.empty()) tracing.service_name = program_name(config_.roles);
    tracing.scope_version = DITHER_VERSION;
    spdlog::info("traces: exported over OTLP/HTTP as service {}", tracing.service_name);
    p.tracer = std::make_unique<observability::Tracer>(std::move(tracing));
    if (p.metrics) count_spans(*p.metrics, *p.tracer);
  }
  must(load_secrets(config_), "secrets");
  // Links to stored files the gateway serves are signed (docs/SECURITY.md).
  p.links =
      std::make_unique<LinkSigner>(config_.security.link_keys, config_.public_base_url + "/files/");
  if (services) {
    must(imaging::init(), "libvips");
    start_services();
  }
  if (roles.gateway) start_gateway();
  check_readiness();

  p.signals.emplace(p.main_context(), SIGINT, SIGTERM);
  p.signals->async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: stopping", signal);
    begin_stop();
  });
}

// What GET /health/ready checks: each part this process opened (the services' servers and the
// gateway answer from the same checks).
void App::check_readiness() {
  Parts& p = *parts_;
  Readiness& r = p.readiness;
  if (p.images) r.add("upload_database", [&p] { return p.images->ping(); });
  if (p.dithers) r.add("dither_database", [&p] { return p.dithers->ping(); });
  if (p.notify_store) r.add("notification_database", [&p] { return p.notify_store->ping(); });
  if (p.identity) r.add("identity_database", [&p] { return p.identity->ping(); });
  if (p.bus) r.add("bus", [&p] { return p.bus->ready(); });
  // The notification service opens the blob store with the others but never uses it.
  const Roles& roles = config_.roles;
  if (p.blobs && (roles.upload || roles.dither || roles.gateway)) {
    r.add("blob_store", [&p] { return p.blobs->ready(); });
  }
  if (p.mail) r.add("mail", [&p] { return p.mail->ready(); });
}

void App::start_services() {
  open_adapters();
  if (config_.roles.upload) start_upload_service();
  if (config_.roles.dither) start_dithering_service();
  if (config_.roles.notify) start_notification_service();
  subscribe_and_start();
  serve_services();
}

// Adapters (app/adapters.h chooses them from the configuration), each waited for up to
// STARTUP_WAIT_SECONDS.
void App::open_adapters() {
  Parts& p = *parts_;
  const Roles& roles = config_.roles;
  const std::chrono::seconds patience{config_.startup_wait_seconds};
  p.blobs = must(patiently([&] { return open_blob_store(config_); }, "blob store", patience),
                 "blob store");
  p.bus =
      must(patiently([&] { return open_event_bus(config_); }, "event bus", patience), "event bus");
  if (p.metrics) {
    p.messaging_metrics = std::make_unique<MessagingMetrics>(*p.metrics);
    p.bus->set_observer(p.messaging_metrics.get());
  }
  if (roles.upload) {
    p.images =
        must(patiently([&] { return open_image_repository(config_); }, "upload database", patience),
             "upload database");
  }
  if (roles.dither) {
    p.dithers = must(
        patiently([&] { return open_dither_repository(config_); }, "dither database", patience),
        "dither database");
  }
  if (roles.notify) {
    p.notify_store = must(patiently([&] { return open_notification_repository(config_); },
                                    "notification database", patience),
                          "notification database");
    p.mail = must(open_mail_sender(config_), "mail");
  }
}

// The upload service and its outbox relay; a sweep of originals left without a record.
void App::start_upload_service() {
  Parts& p = *parts_;
  const Roles& roles = config_.roles;
  const std::chrono::seconds patience{config_.startup_wait_seconds};
  // Uploads dithered automatically are refused past the dither queue's bound (before they are
  // stored), so that the dithering service never refuses an accepted one.
  UploadService::QueueDepth queue_depth;
  if (config_.auto_dither.enabled && config_.quotas.max_pending_dithers > 0) {
    if (!roles.dither && config_.postgres.enabled()) {
      Config probe = config_;
      probe.postgres.pool_size = 1;
      p.queue_probe = must(
          patiently([&] { return open_dither_repository(probe); }, "dither database", patience),
          "dither database");
    }
    DitherRepository* queue = roles.dither ? p.dithers.get() : p.queue_probe.get();
    if (queue != nullptr) {
      queue_depth = [queue] { return queue->count_pending(""); };
    } else {
      spdlog::info("uploads are not checked against MAX_PENDING_DITHERS (no shared database)");
    }
  }
  p.upload = std::make_unique<UploadService>(
      *p.images, *p.blobs, config_.topics, config_.limits, [&p] { p.upload_relay->notify(); },
      config_.quotas, std::move(queue_depth));
  if (p.metrics) p.upload->set_metrics(*p.metrics);
  p.upload->set_tracer(p.tracer.get());
  p.upload_relay = std::make_unique<OutboxRelay>(
      *p.images, *p.bus, "upload", std::chrono::milliseconds{500}, config_.outbox_max_attempts);
  if (p.messaging_metrics) p.upload_relay->set_metrics(*p.messaging_metrics);
  // Only where this process owns the storage (the embedded default): with shared storage
  // another instance's upload may sit between its blob and its row right now.
  const bool owns_storage =
      !config_.postgres.enabled() && !config_.s3.enabled() && !config_.cloudinary.enabled();
  if (!owns_storage) {
    spdlog::info("storage is shared: no sweep of orphan originals");
  } else if (Result<int> orphans = p.upload->remove_orphan_originals(); !orphans) {
    spdlog::warn("cannot sweep orphan originals: {}", orphans.error().message);
  } else if (*orphans > 0) {
    spdlog::info("removed {} originals without a record (left by a crash)", *orphans);
  }
}

// The dithering service, its outbox relay, its URL fetcher and the dither workers.
void App::start_dithering_service() {
  Parts& p = *parts_;
  p.dither = std::make_unique<DitherService>(
      *p.dithers, *p.blobs, config_.topics, config_.limits, config_.auto_dither,
      [&p] { p.dither_relay->notify(); }, [&p] { p.workers->notify(); }, config_.quotas);
  p.dither->set_presets_only(config_.presets_only);
  if (p.metrics) p.dither->set_metrics(*p.metrics);
  p.dither->set_tracer(p.tracer.get());
  // Options an older version stored as requested become canonical (docs/API.md "Options").
  if (Result<int> n = p.dither->canonicalize_stored_options(); !n) {
    spdlog::warn("cannot rewrite stored dither options: {}", n.error().message);
  } else if (*n > 0) {
    spdlog::info("rewrote the stored options of {} dithers in the canonical form", *n);
  }
  // Originals announced only by URL: fetched from the allowed hosts only; none = off (the
  // dither then fails with "fetching is off"). docs/SECURITY.md "URL fetcher".
  if (config_.fetch_allowed_hosts.empty()) {
    spdlog::info("fetching originals by URL is off (FETCH_ALLOWED_HOSTS is empty)");
  } else {
    FetchPolicy policy;
    policy.allowed_hosts = config_.fetch_allowed_hosts;
    policy.allow_loopback = config_.fetch_allow_loopback;
    if (policy.allow_loopback) {
      spdlog::warn(
          "FETCH_ALLOW_LOOPBACK is on: originals may be fetched from this host (tests only)");
    }
    p.fetcher = std::make_unique<CurlUrlFetcher>(std::move(policy));
    p.dither->set_url_fetcher(p.fetcher.get());
  }
  p.dither_relay = std::make_unique<OutboxRelay>(
      *p.dithers, *p.bus, "dither", std::chrono::milliseconds{500}, config_.outbox_max_attempts);
  if (p.messaging_metrics) p.dither_relay->set_metrics(*p.messaging_metrics);
  p.workers = std::make_unique<DitherWorkers>(*p.dither, *p.dithers, config_.dither_workers,
                                              std::chrono::seconds{config_.lease_seconds},
                                              config_.dither_max_attempts, config_.dither_nice);
}

// The notification service and its senders.
void App::start_notification_service() {
  Parts& p = *parts_;
  NotifyOptions options;
  options.public_base_url = config_.public_base_url;
  options.from = config_.mail_from;
  options.max_attempts = config_.notify_max_attempts;
  options.first_backoff = std::chrono::seconds{config_.notify_retry_seconds};
  options.signer = p.links.get();
  options.link_ttl = std::chrono::seconds{config_.security.mail_link_ttl_seconds};
  options.max_per_hour = config_.security.mail_max_per_hour;
  options.address_key = config_.security.api_key_pepper;
  p.notify = std::make_unique<NotificationService>(*p.notify_store, *p.mail, options,
                                                   [&p] { p.notify_senders->notify(); });
  if (p.metrics) p.notify->set_metrics(*p.metrics);
  p.notify->set_tracer(p.tracer.get());
  p.notify_senders = std::make_unique<NotificationSenders>(*p.notify, *p.notify_store, 2);
}

// The consumers of each service, then the bus, the relays, the workers and the senders.
void App::subscribe_and_start() {
  Parts& p = *parts_;
  const Roles& roles = config_.roles;
  const std::string prefix = config_.kafka.group_prefix;
  const std::chrono::seconds patience{config_.startup_wait_seconds};
  // The event log subscribes first, so it records each message before any consumer reacts to
  // it (the in-process bus delivers to subscriptions in order): the log shows causes before
  // effects. With Kafka, read the topics themselves (kcat) instead.
  if (!config_.event_log.empty()) {
    if (config_.kafka.enabled()) {
      spdlog::warn("DITHER_EVENT_LOG is ignored with Kafka: read the topics instead");
    } else {
      p.event_log = std::make_unique<EventLog>(config_.event_log);
      for (const std::string& topic :
           {config_.topics.image, config_.topics.dither, Topics::dead_letter(config_.topics.image),
            Topics::dead_letter(config_.topics.dither)}) {
        p.bus->subscribe(
            {topic, "event-log", [&p](const Message& m) { return p.event_log->append(m); }});
      }
    }
  }
  // Each service consumes the other's topic.
  if (roles.dither) {
    p.bus->subscribe(
        {config_.topics.image, prefix + "dither-service",
         in_message_context([&p](const Message& m) { return p.dither->on_image_message(m); })});
  }
  if (roles.upload) {
    p.bus->subscribe(
        {config_.topics.dither, prefix + "upload-service",
         in_message_context([&p](const Message& m) { return p.upload->on_dither_message(m); })});
  }
  if (roles.notify) {
    p.bus->subscribe(
        {config_.topics.dither, prefix + "notification-service",
         in_message_context([&p](const Message& m) { return p.notify->on_dither_message(m); })});
    // IMAGE_DELETED: the image's address is erased from the notifications.
    p.bus->subscribe(
        {config_.topics.image, prefix + "notification-service",
         in_message_context([&p](const Message& m) { return p.notify->on_image_message(m); })});
  }
  must(patiently([&] { return p.bus->start(); }, "event bus", patience), "event bus");
  if (p.upload_relay) p.upload_relay->start();
  if (p.dither_relay) p.dither_relay->start();
  if (p.workers) p.workers->start();
  if (p.notify_senders) p.notify_senders->start();
}

void App::serve_services() {
  Parts& p = *parts_;
  const Roles& roles = config_.roles;
  // The services' HTTP servers (loopback unless SERVICE_BIND_HOST says otherwise). `port` is
  // updated to the one bound (0 = any free port).
  const auto serve = [&](std::unique_ptr<http::Server>& server, http::Router routes, uint16_t& port,
                         uint64_t body_limit, const char* name, std::string_view what,
                         std::string metrics_label, std::string health_name) {
    http::ServerOptions options;
    options.metrics = p.http_metrics_for(std::move(metrics_label));
    options.tracer = p.tracer.get();
    options.host = config_.service_bind;
    options.port = port;
    options.body_limit = body_limit;
    options.server_name = name;
    options.one_thread_per_context = true;  // Parts: one thread per context
    // Only the gateway may call: it shows the service token (docs/SECURITY.md).
    options.required_header = std::string(kServiceTokenHeader);
    options.required_value = config_.security.service_token;
    // Behind the gateway every peer is the gateway: the owner is the client.
    options.client_key = [](std::string_view, const http::Request& r) {
      return owner_client_key(r);
    };
    add_health_routes(routes, std::move(health_name), p.readiness);
    server = std::make_unique<http::Server>(p.context_list, p.blocking, std::move(routes), options);
    must(server->listen(), what);
    port = server->port();
    spdlog::info("{} on {}:{}", what, config_.service_bind, port);
  };
  const LinkPolicy links{p.links.get(), config_.security.link_ttl_seconds};
  if (roles.upload) {
    serve(p.upload_server, upload_routes(*p.upload, links), config_.upload_port,
          upload_body_limit(config_.limits), "dither-upload", "upload service", "upload", "upload");
  }
  if (roles.dither) {
    serve(p.dither_server, dither_routes(*p.dither, links), config_.dither_port, kDitherBodyLimit,
          "dither-dither", "dithering service", "dithering", "dither");
  }
  if (roles.notify) {
    serve(p.notify_server, notify_routes(*p.notify), config_.notify_port, kDitherBodyLimit,
          "dither-notify", "notification service", "notification", "notify");
    spdlog::info("notifications are sent by {}", p.notify->sender_name());
  }
}

void App::start_gateway() {
  Parts& p = *parts_;
  GatewayOptions gateway_options;
  connect_gateway(gateway_options);
  gateway_storage(gateway_options);
  gateway_access(gateway_options);
  gateway_options.readiness = &p.readiness;
  gateway_options.readiness_executor = p.blocking.get_executor();
  gateway_options.tracer = p.tracer.get();
  p.gateway = std::make_unique<Gateway>(gateway_options);
  http::ServerOptions public_options;
  public_options.host = config_.host;
  public_options.port = config_.port;
  public_options.body_limit = upload_body_limit(config_.limits);
  public_options.max_in_flight = config_.max_in_flight;
  public_options.max_connections = config_.security.max_connections;
  public_options.max_connections_per_address = config_.security.max_connections_per_address;
  public_options.unlimited_addresses = config_.security.trusted_proxies;
  public_options.body_min_rate = static_cast<uint64_t>(config_.security.body_min_rate);
  public_options.body_grace = std::chrono::seconds{config_.security.body_grace_seconds};
  public_options.server_name = "dither";
  public_options.one_thread_per_context = true;
  public_options.metrics = p.http_metrics_for("gateway");
  public_options.tracer = p.tracer.get();
  public_options.compress_min_bytes = static_cast<size_t>(config_.gateway_compress_min_bytes);
  public_options.client_key = [limits = p.limits.get()](std::string_view peer,
                                                        const http::Request& r) {
    const auto forwarded = r["X-Forwarded-For"];
    return limits->client_address(peer, std::string_view(forwarded.data(), forwarded.size()));
  };
  p.gateway_server = std::make_unique<http::Server>(p.context_list, p.blocking, p.gateway->routes(),
                                                    public_options);
  must(p.gateway_server->listen(), "gateway");
  spdlog::info("gateway listening on http://{}:{}", config_.host, p.gateway_server->port());
}

// How the gateway reaches the services: their routers in this process, or HTTP.
void App::connect_gateway(GatewayOptions& gateway_options) {
  Parts& p = *parts_;
  const LinkPolicy links{p.links.get(), config_.security.link_ttl_seconds};
  if (p.upload && p.dither && config_.gateway_upstream == "local") {
    // Same process: straight into the services' routers, with their body limits.
    gateway_options.upload = local_upstream(upload_routes(*p.upload, links), p.blocking,
                                            upload_body_limit(config_.limits));
    gateway_options.dither =
        local_upstream(dither_routes(*p.dither, links), p.blocking, kDitherBodyLimit);
    if (p.notify) {
      gateway_options.notify =
          local_upstream(notify_routes(*p.notify), p.blocking, kDitherBodyLimit);
    }
    // Their parts are this process's: GET /health/ready checks them itself.
    gateway_options.probe_services_ready = false;
  } else {
    // UPLOAD_SERVICE_HOST, DITHER_SERVICE_HOST and NOTIFY_SERVICE_HOST may list several
    // instances: "host[:port],...".
    const auto instances = [&p, this](const std::string& list, uint16_t default_port,
                                      std::string_view variable) {
      std::vector<std::shared_ptr<Upstream>> out;
      std::string_view rest(list);
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (item.empty()) continue;
        http::UpstreamOptions options;
        options.host = std::string(item);
        options.port = default_port;
        options.one_thread_per_context = true;
        if (const size_t colon = item.rfind(':'); colon != std::string_view::npos) {
          Result<int64_t> port = parse_integer(item.substr(colon + 1), 1, 65535, variable);
          if (!port) throw std::runtime_error(port.error().message);
          options.host = std::string(item.substr(0, colon));
          options.port = static_cast<uint16_t>(*port);
        }
        out.push_back(http_upstream(p.main_context().get_executor(), std::move(options),
                                    config_.security.service_token));
      }
      if (out.empty()) throw std::runtime_error(std::string(variable) + " names no instance");
      return failover_upstream(std::move(out));
    };
    gateway_options.upload =
        instances(config_.upload_host, config_.upload_port, "UPLOAD_SERVICE_HOST");
    gateway_options.dither =
        instances(config_.dither_host, config_.dither_port, "DITHER_SERVICE_HOST");
    gateway_options.notify =
        instances(config_.notify_host, config_.notify_port, "NOTIFY_SERVICE_HOST");
  }
}

void App::gateway_storage(GatewayOptions& gateway_options) {
  Parts& p = *parts_;
  // Stored files: from the data directory (the embedded blob store's root), or read from S3.
  // Cloudinary serves its files itself (the records' URLs point there).
  if (config_.s3.enabled()) {
    if (!p.blobs) {
      p.blobs = must(patiently([&] { return open_blob_store(config_); }, "blob store",
                               std::chrono::seconds{config_.startup_wait_seconds}),
                     "blob store");
    }
    gateway_options.files_store = p.blobs.get();
  } else if (!config_.cloudinary.enabled()) {
    gateway_options.files_root = config_.data_dir / "files";
  }
  gateway_options.thumbnail_limits = config_.limits;
  if (!config_.cloudinary.enabled()) {
    // Previews are stored beside the files (Cloudinary serves its files itself).
    if (!p.blobs) {
      p.blobs = must(patiently([&] { return open_blob_store(config_); }, "blob store",
                               std::chrono::seconds{config_.startup_wait_seconds}),
                     "blob store");
    }
    gateway_options.thumbnail_store = p.blobs.get();
  }
}

// Who may call, and how often.
void App::gateway_access(GatewayOptions& gateway_options) {
  Parts& p = *parts_;
  // Who may call: API keys and browser sessions (docs/SECURITY.md).
  p.identity = must(patiently([&] { return open_identity_store(config_); }, "identity store",
                              std::chrono::seconds{config_.startup_wait_seconds}),
                    "identity store");
  AccessOptions access;
  access.store = p.identity.get();
  access.pepper = config_.security.api_key_pepper;
  access.cache_seconds = config_.security.auth_cache_seconds;
  access.session_lifetime_days = config_.security.session_lifetime_days;
  access.public_base_url = config_.public_base_url;
  access.allowed_hosts = config_.security.allowed_hosts;
  // Loopback names are ours when the gateway listens on loopback, or on every address (local
  // probes; a container's health check).
  access.loopback = config_.host == "localhost" || config_.host == "::1" ||
                    config_.host.starts_with("127.") || config_.host == "0.0.0.0" ||
                    config_.host == "::";
  for (const std::string& h : config_.security.allowed_hosts) {
    if (h == "*") {
      spdlog::warn("ALLOWED_HOSTS=*: any Host is answered; DNS rebinding is not stopped");
    }
  }
  p.access = std::make_unique<Access>(std::move(access));
  gateway_options.access = p.access.get();
  RateLimitOptions rates;
  rates.uploads_per_minute = config_.security.rate_uploads;
  rates.dithers_per_minute = config_.security.rate_dithers;
  rates.reads_per_minute = config_.security.rate_reads;
  rates.sessions_per_minute = config_.security.rate_sessions;
  rates.burst_seconds = config_.security.rate_burst_seconds;
  rates.tarpit = std::chrono::milliseconds{config_.security.rate_tarpit_ms};
  rates.address_factor = config_.security.rate_address_factor;
  rates.trusted_proxies = config_.security.trusted_proxies;
  p.limits = std::make_unique<RateLimits>(std::move(rates));
  gateway_options.limits = p.limits.get();
  gateway_options.links = p.links.get();
}

void App::run() {
  Parts& p = *parts_;
  std::vector<std::thread> threads;
  for (size_t i = 1; i < p.contexts.size(); ++i) {
    threads.emplace_back([context = p.contexts[i].get()] { context->run(); });
  }
  p.main_context().run();
  for (auto& t : threads) t.join();
}

void App::begin_stop() {
  Parts& p = *parts_;
  if (p.stopping.exchange(true)) return;
  p.readiness.stopping();
  // Stop accepting and close idle connections; requests being handled finish. Each context's
  // run() returns once it has nothing left to do, or after the grace period.
  if (p.gateway_server) p.gateway_server->stop();
  if (p.upload_server) p.upload_server->stop();
  if (p.dither_server) p.dither_server->stop();
  if (p.notify_server) p.notify_server->stop();
  if (p.gateway) p.gateway->close();
  for (auto& guard : p.keep_running) guard.reset();
  p.grace = std::thread([&p] {
    std::unique_lock lock(p.grace_mutex);
    if (!p.grace_done.wait_for(lock, std::chrono::seconds{10}, [&] { return p.grace_over; })) {
      spdlog::warn("requests still running after 10 s: stopping anyway");
      p.stop_contexts();
    }
  });
}

void App::stop() {
  if (!parts_) return;
  Parts& p = *parts_;
  begin_stop();
  p.stop_contexts();
  {
    std::lock_guard lock(p.grace_mutex);
    p.grace_over = true;
    p.grace_done.notify_all();
  }
  if (p.grace.joinable()) p.grace.join();
  p.blocking.join();
  p.drain_contexts();
  if (p.workers) p.workers->stop();
  if (p.notify_senders) p.notify_senders->stop();
  if (p.upload_relay) p.upload_relay->stop();
  if (p.dither_relay) p.dither_relay->stop();
  if (p.bus) p.bus->stop();
  // The last spans (the requests and dithers that finished while stopping) go out, or at most 3 s
  // are spent trying.
  if (p.tracer) p.tracer->shutdown(std::chrono::seconds{3});
  parts_.reset();
  spdlog::info("stopped");
}

}  // namespace dither
