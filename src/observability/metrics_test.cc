#include "observability/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "http/testing.h"
#include "observability/http_metrics.h"
#include "observability/listener.h"
#include "observability/process_metrics.h"

namespace dither::observability {
namespace {

// The value of one series ("name{labels}", labels in alphabetical order as prometheus-cpp writes
// them) in an exposition; NaN when it is not there.
double sample(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return std::nan("");
}

TEST(Metrics, CounterMovesAndLabelsAppear) {
  Metrics metrics("1.2.3");
  const CounterFamily uploads = metrics.counter("uploads_total", "Uploads.", {"outcome"});
  uploads.with({"stored"}).Increment();
  uploads.with({"stored"}).Increment(2);
  uploads.with({"refused"}).Increment();
  const std::string text = metrics.render();
  EXPECT_EQ(sample(text, R"(dither_uploads_total{outcome="stored"})"), 3);
  EXPECT_EQ(sample(text, R"(dither_uploads_total{outcome="refused"})"), 1);
  EXPECT_NE(text.find("# TYPE dither_uploads_total counter"), std::string::npos);
  EXPECT_NE(text.find("# HELP dither_uploads_total Uploads."), std::string::npos);
  EXPECT_EQ(sample(text, R"(dither_build_info{version="1.2.3"})"), 1);
}

TEST(Metrics, GaugeWithoutLabelsAndScrapeCallbacks) {
  Metrics metrics("0");
  const GaugeFamily depth = metrics.gauge("queue_depth", "Pending dithers.");
  int pending = 0;
  metrics.on_scrape([&] { depth.with({}).Set(pending); });
  pending = 7;
  EXPECT_EQ(sample(metrics.render(), "dither_queue_depth"), 7);
  pending = 2;
  EXPECT_EQ(sample(metrics.render(), "dither_queue_depth"), 2);
}

TEST(Metrics, HistogramHasCumulativeBucketsSumAndCount) {
  Metrics metrics("0");
  const HistogramFamily stages =
      metrics.histogram("stage_duration_seconds", "Stage time.", {"stage"}, {0.01, 0.1, 1});
  prometheus::Histogram& decode = stages.with({"decode"});
  decode.Observe(0.005);
  decode.Observe(0.05);
  decode.Observe(0.07);
  decode.Observe(5);
  const std::string text = metrics.render();
  const std::string name = "dither_stage_duration_seconds";
  EXPECT_EQ(sample(text, name + R"(_bucket{stage="decode",le="0.01"})"), 1);
  EXPECT_EQ(sample(text, name + R"(_bucket{stage="decode",le="0.1"})"), 3);
  EXPECT_EQ(sample(text, name + R"(_bucket{stage="decode",le="1"})"), 3);
  EXPECT_EQ(sample(text, name + R"(_bucket{stage="decode",le="+Inf"})"), 4);
  EXPECT_DOUBLE_EQ(sample(text, name + R"(_sum{stage="decode"})"), 5.125);
  EXPECT_EQ(sample(text, name + R"(_count{stage="decode"})"), 4);
  EXPECT_NE(text.find("# TYPE " + name + " histogram"), std::string::npos);
}

TEST(Metrics, RefusesNamesAgainstTheConventions) {
  Metrics metrics("0");
  EXPECT_THROW(metrics.counter("uploads", "No _total."), std::invalid_argument);
  EXPECT_THROW(metrics.gauge("uploads_total", "A gauge with _total."), std::invalid_argument);
  EXPECT_THROW(metrics.counter("dither_uploads_total", "Prefix twice."), std::invalid_argument);
  EXPECT_THROW(metrics.gauge("Queue_depth", "Upper case."), std::invalid_argument);
  EXPECT_THROW(metrics.gauge("queue-depth", "A dash."), std::invalid_argument);
  EXPECT_THROW(metrics.histogram("latency_milliseconds", "Not seconds.", {}, kHttpBuckets),
               std::invalid_argument);
  EXPECT_THROW(metrics.gauge("upload_size_kb", "Not bytes."), std::invalid_argument);
  EXPECT_THROW(metrics.histogram("x_seconds", "le label.", {"le"}, kHttpBuckets),
               std::invalid_argument);
  EXPECT_THROW(metrics.histogram("y_seconds", "Unsorted.", {}, {1, 0.5}), std::invalid_argument);
  // "ms" is refused as a word only: "items" is fine.
  EXPECT_NO_THROW(metrics.gauge("items", "Items."));
}

TEST(Metrics, OneNameKeepsItsLabelsAndSeries) {
  Metrics metrics("0");
  const CounterFamily first = metrics.counter("mails_total", "Mails.", {"outcome"});
  const CounterFamily again = metrics.counter("mails_total", "Mails.", {"outcome"});
  EXPECT_EQ(&first.with({"sent"}), &again.with({"sent"}));
  EXPECT_THROW(metrics.counter("mails_total", "Mails.", {"result"}), std::invalid_argument);
  EXPECT_THROW(metrics.gauge("mails_total", "Other type."), std::invalid_argument);
  EXPECT_THROW(first.with({}), std::invalid_argument);
  EXPECT_THROW(first.with({"sent", "extra"}), std::invalid_argument);
}

TEST(Metrics, ExponentialBuckets) {
  EXPECT_EQ(exponential_buckets(1, 2, 4), (Buckets{1, 2, 4, 8}));
  EXPECT_EQ(kByteBuckets.front(), 1024);
  EXPECT_EQ(kByteBuckets.back(), 256.0 * 1024 * 1024);
  EXPECT_THROW(exponential_buckets(0, 2, 3), std::invalid_argument);
}

TEST(ProcessMetrics, PlausibleValues) {
  const ProcessStats before = read_process_stats();
  EXPECT_GT(before.resident_bytes, 1 << 20);
  EXPECT_LT(before.resident_bytes, 1ull << 40);
  EXPECT_GT(before.virtual_bytes, before.resident_bytes);
  EXPECT_GE(before.open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GE(before.max_fds, before.open_fds);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(before.start_time_seconds, now - 3600);
  EXPECT_LT(before.start_time_seconds, now + 2);

  // CPU time moves with work, open descriptors with files. The work is 150 ms of this process's
  // CPU time, not of the clock's: on a loaded machine 150 ms of wall time gave it 40 ms of CPU.
  volatile double sink = 0;
  const auto cpu_now = [] {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  };
  const double cpu_until = cpu_now() + 0.15;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (cpu_now() < cpu_until && std::chrono::steady_clock::now() < give_up) {
    for (int i = 0; i < 1000; ++i) sink = sink + std::sqrt(sink + 1);
  }
  std::FILE* file = std::fopen("/proc/self/stat", "r");
  ASSERT_NE(file, nullptr);
  const ProcessStats after = read_process_stats();
  std::fclose(file);
  EXPECT_GT(after.cpu_seconds, before.cpu_seconds + 0.05);
  EXPECT_EQ(after.open_fds, before.open_fds + 1);
}

TEST(ProcessMetrics, RenderedWithTheStandardNames) {
  Metrics metrics("0");
  const std::string text = metrics.render();
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"}) {
    SCOPED_TRACE(name);
    EXPECT_GE(sample(text, name), 0);
  }
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
  EXPECT_GT(sample(text, "process_resident_memory_bytes"), 1 << 20);
}

TEST(HttpMetrics, CountsTimesAndTracksInFlight) {
  Metrics metrics("0");
  HttpMetrics http(metrics, "gateway");
  HttpMetrics::Route& images = http.route("/images/{uuid}", "GET");
  EXPECT_EQ(&images, &http.route("/images/{uuid}", "GET"));
  const std::string in_flight = R"(dither_http_requests_in_flight{server="gateway"})";
  {
    HttpMetrics::Request first = http.start();
    HttpMetrics::Request second = http.start();
    EXPECT_EQ(sample(metrics.render(), in_flight), 2);
    first.finish(images, 200);
    first.finish(images, 200);  // once only
    EXPECT_EQ(sample(metrics.render(), in_flight), 1);
    second.finish(images, 404);
    HttpMetrics::Request abandoned = http.start();  // ended by an exception: not counted
  }
  http.rejected("overloaded");
  http.connections().Increment();
  const std::string text = metrics.render();
  EXPECT_EQ(sample(text, in_flight), 0);
  const std::string labels = R"(method="GET",route="/images/{uuid}",server="gateway")";
  EXPECT_EQ(sample(text, "dither_http_requests_total{" + labels + R"(,status="200"})"), 1);
  EXPECT_EQ(sample(text, "dither_http_requests_total{" + labels + R"(,status="404"})"), 1);
  EXPECT_EQ(sample(text, "dither_http_request_duration_seconds_count{" + labels + "}"), 2);
  EXPECT_LT(sample(text, "dither_http_request_duration_seconds_sum{" + labels + "}"), 1);
  EXPECT_EQ(sample(text, "dither_http_request_duration_seconds_bucket{" + labels + R"(,le="10"})"),
            2);
  EXPECT_EQ(sample(text, R"(dither_http_rejections_total{reason="overloaded",server="gateway"})"),
            1);
  EXPECT_EQ(sample(text, R"(dither_http_connections{server="gateway"})"), 1);
}

TEST(HttpMetrics, TwoServersShareTheFamilies) {
  Metrics metrics("0");
  HttpMetrics gateway(metrics, "gateway");
  HttpMetrics upload(metrics, "upload");
  gateway.start().finish(gateway.route("/health", "GET"), 200);
  upload.start().finish(upload.route("/health", "GET"), 200);
  const std::string text = metrics.render();
  for (const char* server : {"gateway", "upload"}) {
    const std::string series =
        std::string(R"(dither_http_requests_total{method="GET",route="/health",server=")") +
        server + R"(",status="200"})";
    EXPECT_EQ(sample(text, series), 1);
  }
}

// An http::Server given HttpMetrics records each request under its route's pattern (never the
// path), the method and the status; a path no route matches under "unmatched"; a body over the
// limit as a rejection; and its open connections.
TEST(ServerMetrics, RequestsByPatternRejectionsAndConnections) {
  Metrics metrics("0");
  HttpMetrics recorded(metrics, "test");
  http::Router router;
  router.add(http::Verb::get, "/images/{uuid}", [](const http::RequestContext& c) {
    http::Response r;
    r.status = c.param("uuid") == "missing" ? 404 : 200;
    return r;
  });
  router.add(http::Verb::post, "/images", [](const http::RequestContext&) {
    http::Response r;
    r.status = 201;
    return r;
  });
  http::ServerOptions options;
  options.body_limit = 16;
  options.metrics = &recorded;
  http::testing::RunningServer server(std::move(router), options);
  {
    http::testing::RawClient client(server.port());
    EXPECT_EQ(client.exchange("GET /images/a HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 200);
    EXPECT_EQ(client.exchange("GET /images/b HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 200);
    EXPECT_EQ(client.exchange("GET /images/missing HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 404);
    EXPECT_EQ(client.exchange("GET /nowhere/1 HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 404);
    EXPECT_EQ(sample(metrics.render(), R"(dither_http_connections{server="test"})"), 1);
    EXPECT_EQ(client
                  .exchange("POST /images HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n" +
                            std::string(99, 'a'))
                  .result_int(),
              413);
  }
  const std::string text = metrics.render();
  const auto requests = [&](const std::string& route, const std::string& status) {
    return sample(text, R"(dither_http_requests_total{method="GET",route=")" + route +
                            R"(",server="test",status=")" + status + R"("})");
  };
  EXPECT_EQ(requests("/images/{uuid}", "200"), 2);
  EXPECT_EQ(requests("/images/{uuid}", "404"), 1);
  EXPECT_EQ(requests("unmatched", "404"), 1);
  EXPECT_EQ(text.find("/images/a"), std::string::npos) << "a path, not its pattern, in a label";
  EXPECT_EQ(sample(text, R"(dither_http_request_duration_seconds_count{method="GET",)"
                         R"(route="/images/{uuid}",server="test"})"),
            3);
  EXPECT_EQ(sample(text, R"(dither_http_rejections_total{reason="too_large",server="test"})"), 1);
  EXPECT_EQ(sample(text, R"(dither_http_requests_in_flight{server="test"})"), 0);
  // The client is gone: its connection closes (on the server's thread, soon after).
  for (int i = 0; i < 200; ++i) {
    if (sample(metrics.render(), R"(dither_http_connections{server="test"})") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(sample(metrics.render(), R"(dither_http_connections{server="test"})"), 0);
}

TEST(Listener, ParsesAddresses) {
  Result<ListenAddress> v4 = parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9464);
  Result<ListenAddress> v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  for (const char* bad : {"9464", ":9464", "host:", "host:65536", "host:12x", "::1:80", "[]:80"}) {
    SCOPED_TRACE(bad);
    Result<ListenAddress> parsed = parse_listen_address(bad);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().kind, ErrorKind::kInvalidArgument);
  }
}

TEST(Listener, OffWithoutAnAddressAndRefusesBadOnes) {
  Metrics metrics("0");
  Result<std::unique_ptr<MetricsListener>> off = serve_metrics(metrics, "");
  ASSERT_TRUE(off);
  EXPECT_EQ(*off, nullptr);
  Result<std::unique_ptr<MetricsListener>> bad = serve_metrics(metrics, "localhost");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
}

TEST(Listener, AnswersGetMetricsAndNothingElse) {
  Metrics metrics("9.9.9");
  metrics.counter("scrapes_seen_total", "For the test.").with({}).Increment();
  Result<std::unique_ptr<MetricsListener>> listener = serve_metrics(metrics, "127.0.0.1:0");
  ASSERT_TRUE(listener) << listener.error().message;
  ASSERT_NE(*listener, nullptr);
  const uint16_t port = (*listener)->port();
  ASSERT_NE(port, 0);

  http::testing::RawClient client(port);
  const auto ok = client.exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_TRUE(std::string(ok[boost::beast::http::field::content_type])
                  .starts_with("text/plain; version=0.0.4"));
  EXPECT_EQ(sample(ok.body(), R"(dither_build_info{version="9.9.9"})"), 1);
  EXPECT_EQ(sample(ok.body(), "dither_scrapes_seen_total"), 1);
  EXPECT_GT(sample(ok.body(), "process_open_fds"), 0);

  const auto head = client.exchange("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", true);
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(client.exchange("GET /other HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 404);
  EXPECT_EQ(client.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 404);
  EXPECT_EQ(client.exchange("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                .result_int(),
            405);
  listener->reset();  // stops and joins
}

TEST(Listener, SecondListenerOnTheSamePortIsUnavailable) {
  Metrics metrics("0");
  Result<std::unique_ptr<MetricsListener>> first = serve_metrics(metrics, "127.0.0.1:0");
  ASSERT_TRUE(first);
  Result<std::unique_ptr<MetricsListener>> second =
      serve_metrics(metrics, "127.0.0.1:" + std::to_string((*first)->port()));
  // SO_REUSEPORT lets one process bind twice; a refusal must then be kUnavailable, not a throw.
  if (!second) {
    EXPECT_EQ(second.error().kind, ErrorKind::kUnavailable);
  }
}

// promtool (Debian's `prometheus` package, installed by scripts/setup.sh): the check must run, so
// a missing promtool fails the test rather than skipping it.
std::string promtool() {
  if (const char* path = std::getenv("PATH")) {
    std::istringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      const std::filesystem::path candidate = std::filesystem::path(dir) / "promtool";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return ::access("/usr/bin/promtool", X_OK) == 0 ? "/usr/bin/promtool" : "";
}

// Runs `promtool check metrics` on `text`: its exit status and what it printed.
std::pair<int, std::string> check_metrics(const std::string& text) {
  const std::string tool = promtool();
  if (tool.empty()) throw std::runtime_error("promtool not found (scripts/setup.sh installs it)");
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("observability_test_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file) << text;
  const std::string command = tool + " check metrics < " + file.string() + " 2>&1";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed");
  std::string output;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  const int status = ::pclose(pipe);
  std::filesystem::remove(file);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(Promtool, AcceptsAnExpositionWithEveryKind) {
  ASSERT_FALSE(promtool().empty()) << "promtool not found: run scripts/setup.sh";
  Metrics metrics(DITHER_VERSION);
  metrics.counter("dithers_total", "Dithers by algorithm and outcome.", {"algorithm", "outcome"})
      .with({"floyd-steinberg", "done"})
      .Increment();
  metrics.counter("mails_sent_total", "Mails sent.").with({}).Increment();
  metrics.gauge("outbox_backlog", "Messages waiting in the outbox.").with({}).Set(3);
  metrics.gauge("oldest_pending_age_seconds", "Age of the oldest pending dither.")
      .with({})
      .Set(0.25);
  metrics.histogram("upload_size_bytes", "Upload sizes.", {}, kByteBuckets).with({}).Observe(5e5);
  metrics.histogram("stage_duration_seconds", "Time per stage.", {"stage"}, kStageBuckets)
      .with({"encode"})
      .Observe(0.02);
  HttpMetrics http(metrics, "gateway");
  http.start().finish(http.route("/images/{uuid}", "GET"), 200);
  http.rejected("too_large");
  http.connections().Set(2);
  const std::string text = metrics.render();
  ASSERT_NE(text.find("dither_build_info"), std::string::npos);
  const auto [status, output] = check_metrics(text);
  EXPECT_EQ(status, 0) << output << "\n--- exposition:\n" << text;
  EXPECT_EQ(output, "") << output;
}

// The check above can fail: promtool does complain about a counter without _total.
TEST(Promtool, ComplainsAboutABadName) {
  ASSERT_FALSE(promtool().empty()) << "promtool not found: run scripts/setup.sh";
  const auto [status, output] = check_metrics(
      "# HELP dither_uploads Uploads.\n# TYPE dither_uploads counter\n"
      "dither_uploads 1\n");
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("_total"), std::string::npos) << output;
}

}  // namespace
}  // namespace dither::observability
