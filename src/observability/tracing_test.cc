#include "observability/tracing.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "http/testing.h"

namespace dither::observability {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr std::string_view kParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// What the exporter sent: each request's URL, body and headers; answers with `statuses` in turn
// (200 once they are used up).
struct Recorder {
  struct Call {
    std::string url;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  std::mutex mutex;
  std::vector<Call> calls;
  std::vector<int> statuses;

  OtlpTransport transport() {
    return [this](const std::string& url, const std::string& body,
                  const std::vector<std::pair<std::string, std::string>>& headers,
                  std::chrono::milliseconds) {
      const std::lock_guard lock(mutex);
      calls.push_back({url, body, headers});
      if (calls.size() <= statuses.size()) return statuses[calls.size() - 1];
      return 200;
    };
  }
  // Every span of every successful export... or of all of them.
  std::vector<json::object> spans() {
    const std::lock_guard lock(mutex);
    std::vector<json::object> out;
    for (const Call& call : calls) {
      const json::value body = json::parse(call.body);
      for (const json::value& rs : body.at("resourceSpans").as_array()) {
        for (const json::value& ss : rs.at("scopeSpans").as_array()) {
          for (const json::value& s : ss.at("spans").as_array()) out.push_back(s.as_object());
        }
      }
    }
    return out;
  }
};

TracerOptions test_options(Recorder& recorder) {
  TracerOptions options;
  options.endpoint = "http://127.0.0.1:1/v1/traces";
  options.service_name = "tracing-test";
  options.scope_version = "1.2.3";
  options.transport = recorder.transport();
  options.schedule_delay = 1h;  // exports happen at shutdown (flush), or when a batch is full
  options.first_backoff = 5ms;
  return options;
}

std::string attribute(const json::object& span, std::string_view key) {
  for (const json::value& a : span.at("attributes").as_array()) {
    if (a.at("key").as_string() == key) return json::serialize(a.at("value"));
  }
  return "";
}

TEST(TraceContext, ParsesW3cTraceparent) {
  const std::optional<SpanContext> c = parse_traceparent(kParent);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(c->span_id_hex(), "00f067aa0ba902b7");
  EXPECT_TRUE(c->sampled);
  EXPECT_EQ(c->traceparent(), kParent);
  const std::optional<SpanContext> unsampled =
      parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->sampled);
  EXPECT_TRUE(unsampled->traceparent().ends_with("-00"));
  // A later version: its first four fields, whatever follows a '-'.
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"));
  for (std::string_view bad : {
           "",
           "garbage",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // forbidden version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // version 00 is exact
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
  EXPECT_EQ(SpanContext{}.traceparent(), "");
}

TEST(TraceContext, WithoutTracerASpanCarriesItsParentOn) {
  Span span = start_span(nullptr, "GET /x", SpanKind::kServer, kParent);
  EXPECT_FALSE(span.recording());
  EXPECT_FALSE(span.traced());
  EXPECT_EQ(span.traceparent(), kParent);
  span.set("http.route", "/x").set("n", 3).set_error("nothing happens");
  Span child = span.child("store");
  EXPECT_EQ(child.traceparent(), kParent);
  // A malformed parent: nothing to carry on (a message made from "" starts a new trace).
  EXPECT_EQ(start_span(nullptr, "x", SpanKind::kServer, "00-bad").traceparent(), "");
  std::vector<std::pair<std::string, std::string>> headers = {{"traceparent", "keep"}};
  inject_traceparent(headers, span);
  EXPECT_EQ(headers.front().second, "keep");
}

TEST(Tracer, ContinuesAnIncomingTraceOrStartsOne) {
  Recorder recorder;
  Tracer tracer(test_options(recorder));
  std::string server_context;
  {
    Span server = start_span(&tracer, "POST /images", SpanKind::kServer, kParent);
    ASSERT_TRUE(server.recording());
    server_context = server.traceparent();
    const SpanContext& c = server.context();
    EXPECT_EQ(c.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_NE(c.span_id_hex(), "00f067aa0ba902b7");
    Span child = server.child("store", SpanKind::kClient);
    EXPECT_EQ(child.context().trace_id_hex(), c.trace_id_hex());
    EXPECT_NE(child.context().span_id_hex(), c.span_id_hex());
  }
  Span fresh = start_span(&tracer, "GET /", SpanKind::kServer, "not a traceparent");
  EXPECT_TRUE(fresh.context().valid());
  EXPECT_NE(fresh.context().trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_TRUE(parse_traceparent(fresh.traceparent()));
  fresh.end();
  tracer.shutdown(2s);

  const std::vector<json::object> spans = recorder.spans();
  ASSERT_EQ(spans.size(), 3u);
  // In the order they ended: the child, its parent, the new root.
  EXPECT_EQ(spans[0].at("name").as_string(), "store");
  EXPECT_EQ(spans[0].at("parentSpanId").as_string(), server_context.substr(36, 16));
  EXPECT_EQ(spans[1].at("parentSpanId").as_string(), "00f067aa0ba902b7");
  EXPECT_FALSE(spans[2].contains("parentSpanId"));
  EXPECT_EQ(tracer.stats().exported, 3u);
}

TEST(Tracer, WritesOtlpJson) {
  Recorder recorder;
  TracerOptions options = test_options(recorder);
  options.resource = {{"deployment.environment", "test"}, {"service.name", "overridden"}};
  options.headers = {{"Authorization", "Bearer secret"}};
  Tracer tracer(options);
  const int64_t before = unix_nano_now();
  {
    Span span = start_span(&tracer, "GET", SpanKind::kServer, kParent);
    span.set_name("GET /images/{uuid}");
    span.set("http.route", "/images/{uuid}")
        .set("http.response.status_code", 503)
        .set("retried", false)
        .set("big", std::string(5000, 'x'))
        .set("broken", std::string("caf\xc3", 4));
    span.set("http.response.status_code", 500);  // set again: replaced
    span.set_error("internal error");
  }
  tracer.shutdown(2s);
  ASSERT_EQ(recorder.calls.size(), 1u);
  const Recorder::Call& call = recorder.calls.front();
  EXPECT_EQ(call.url, "http://127.0.0.1:1/v1/traces");
  ASSERT_EQ(call.headers.size(), 1u);
  EXPECT_EQ(call.headers[0].second, "Bearer secret");

  const json::value body = json::parse(call.body);
  const json::object& rs = body.at("resourceSpans").as_array().at(0).as_object();
  std::map<std::string, std::string> resource;
  for (const json::value& a : rs.at("resource").at("attributes").as_array()) {
    resource[std::string(a.at("key").as_string())] =
        std::string(a.at("value").at("stringValue").as_string());
  }
  EXPECT_EQ(resource["service.name"], "tracing-test");
  EXPECT_EQ(resource["deployment.environment"], "test");
  EXPECT_EQ(resource["telemetry.sdk.language"], "cpp");
  const json::object& ss = rs.at("scopeSpans").as_array().at(0).as_object();
  EXPECT_EQ(ss.at("scope").at("name").as_string(), "dither");
  EXPECT_EQ(ss.at("scope").at("version").as_string(), "1.2.3");
  const json::object& span = ss.at("spans").as_array().at(0).as_object();
  EXPECT_EQ(span.at("traceId").as_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.at("spanId").as_string().size(), 16u);
  EXPECT_EQ(span.at("parentSpanId").as_string(), "00f067aa0ba902b7");
  EXPECT_EQ(span.at("name").as_string(), "GET /images/{uuid}");
  EXPECT_EQ(span.at("kind").as_int64(), 2);
  // int64 values are strings in protobuf's JSON mapping.
  const int64_t start = std::stoll(std::string(span.at("startTimeUnixNano").as_string()));
  const int64_t end = std::stoll(std::string(span.at("endTimeUnixNano").as_string()));
  EXPECT_GE(start, before);
  EXPECT_GE(end, start);
  EXPECT_EQ(attribute(span, "http.route"), R"({"stringValue":"/images/{uuid}"})");
  EXPECT_EQ(attribute(span, "http.response.status_code"), R"({"intValue":"500"})");
  EXPECT_EQ(attribute(span, "retried"), R"({"boolValue":false})");
  EXPECT_EQ(attribute(span, "big").size(), std::string(R"({"stringValue":""})").size() + 1024);
  EXPECT_EQ(attribute(span, "broken"), "{\"stringValue\":\"caf\xef\xbf\xbd\"}");
  EXPECT_EQ(span.at("status").at("code").as_int64(), 2);
  EXPECT_EQ(span.at("status").at("message").as_string(), "internal error");
}

TEST(Tracer, ExplicitTimesForStagesMeasuredElsewhere) {
  Recorder recorder;
  Tracer tracer(test_options(recorder));
  {
    Span parent = start_span(&tracer, "dither", SpanKind::kInternal, "");
    parent.child("decode", SpanKind::kInternal, 1'000'000'000).end(1'500'000'000);
  }
  tracer.shutdown(2s);
  const std::vector<json::object> spans = recorder.spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].at("startTimeUnixNano").as_string(), "1000000000");
  EXPECT_EQ(spans[0].at("endTimeUnixNano").as_string(), "1500000000");
}

TEST(Tracer, SamplerDecisions) {
  Recorder recorder;
  const auto decide = [&](Sampler sampler, double ratio, std::string_view parent,
                          std::string_view trace_id) {
    TracerOptions options = test_options(recorder);
    options.sampler = sampler;
    options.ratio = ratio;
    Tracer tracer(options);
    return tracer.should_sample(parse_traceparent(parent).value_or(SpanContext{}), trace_id);
  };
  const std::string low =
      "4bf92f3577b34da60000000000000001";  // low 64 bits tiny: kept at any ratio
  const std::string high = "4bf92f3577b34da6fffffffffffffff0";  // kept only at ratio 1
  const std::string half = "4bf92f3577b34da67fffffffffffffff";  // >> 1 is just under 2^62
  const std::string sampled(kParent);
  const std::string unsampled = sampled.substr(0, 53) + "00";

  EXPECT_TRUE(decide(Sampler::kAlwaysOn, 1, unsampled, high));
  EXPECT_FALSE(decide(Sampler::kAlwaysOff, 1, sampled, low));
  EXPECT_TRUE(decide(Sampler::kTraceIdRatio, 0.001, "", low));
  EXPECT_FALSE(decide(Sampler::kTraceIdRatio, 0.999, "", high));
  EXPECT_TRUE(decide(Sampler::kTraceIdRatio, 1, "", high));
  EXPECT_FALSE(decide(Sampler::kTraceIdRatio, 0, "", low));
  EXPECT_TRUE(decide(Sampler::kTraceIdRatio, 0.5, "", half));
  EXPECT_FALSE(decide(Sampler::kTraceIdRatio, 0.49, "", half));
  // traceidratio ignores the parent's flag; parent-based samplers follow it.
  EXPECT_FALSE(decide(Sampler::kTraceIdRatio, 0.5, sampled, high));
  EXPECT_TRUE(decide(Sampler::kParentBasedAlwaysOn, 1, "", high));
  EXPECT_FALSE(decide(Sampler::kParentBasedAlwaysOn, 1, unsampled, low));
  EXPECT_FALSE(decide(Sampler::kParentBasedAlwaysOff, 1, "", low));
  EXPECT_TRUE(decide(Sampler::kParentBasedAlwaysOff, 1, sampled, low));
  EXPECT_TRUE(decide(Sampler::kParentBasedTraceIdRatio, 0, sampled, high));
  EXPECT_FALSE(decide(Sampler::kParentBasedTraceIdRatio, 0.5, "", high));

  // Of many new traces, about the ratio are kept; an unsampled span passes "-00" on, and its
  // children are not recorded either.
  TracerOptions options = test_options(recorder);
  options.sampler = Sampler::kParentBasedTraceIdRatio;
  options.ratio = 0.25;
  Tracer tracer(options);
  int kept = 0;
  for (int i = 0; i < 4000; ++i) {
    Span span = start_span(&tracer, "x", SpanKind::kServer, "");
    kept += span.recording() ? 1 : 0;
    EXPECT_EQ(span.recording(), span.context().sampled);
    if (!span.recording()) {
      EXPECT_TRUE(span.traceparent().ends_with("-00"));
      EXPECT_FALSE(span.child("y").recording());
    }
  }
  EXPECT_NEAR(kept, 1000, 150);
}

TEST(Tracer, AFullQueueDropsAndCounts) {
  Recorder recorder;
  TracerOptions options = test_options(recorder);
  options.max_queue = 4;
  options.max_batch = 100;  // never full: nothing is sent before the shutdown
  Tracer tracer(options);
  for (int i = 0; i < 10; ++i) start_span(&tracer, "x", SpanKind::kInternal, "").end();
  Tracer::Stats stats = tracer.stats();
  EXPECT_EQ(stats.queued, 4u);
  EXPECT_EQ(stats.dropped, 6u);
  tracer.shutdown(2s);
  EXPECT_EQ(tracer.stats().exported, 4u);
  // After the shutdown nothing is queued.
  start_span(&tracer, "late", SpanKind::kInternal, "").end();
  EXPECT_EQ(tracer.stats().dropped, 7u);
  EXPECT_EQ(recorder.calls.size(), 1u);
}

TEST(Tracer, AFullBatchIsSentWithoutWaitingForTheSchedule) {
  Recorder recorder;
  TracerOptions options = test_options(recorder);
  options.max_batch = 3;
  Tracer tracer(options);
  for (int i = 0; i < 3; ++i) start_span(&tracer, "x", SpanKind::kInternal, "").end();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (tracer.stats().exported < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(tracer.stats().exported, 3u);
}

TEST(Tracer, RetriesWhatTheCollectorCannotTakeYet) {
  Recorder recorder;
  recorder.statuses = {503, 0, 429, 200};
  Tracer tracer(test_options(recorder));
  start_span(&tracer, "x", SpanKind::kInternal, "").end();
  tracer.shutdown(5s);
  EXPECT_EQ(recorder.calls.size(), 4u);
  EXPECT_EQ(tracer.stats().exported, 1u);
  EXPECT_EQ(tracer.stats().failed, 0u);
}

TEST(Tracer, GivesUpOnARefusalAndAfterMaxAttempts) {
  Recorder refused;
  refused.statuses = {400};
  {
    Tracer tracer(test_options(refused));
    start_span(&tracer, "x", SpanKind::kInternal, "").end();
    tracer.shutdown(5s);
    EXPECT_EQ(tracer.stats().failed, 1u);
  }
  EXPECT_EQ(refused.calls.size(), 1u);  // a 400 is not sent again

  Recorder down;
  down.statuses = {0, 0, 0, 0, 0, 0, 0};
  TracerOptions options = test_options(down);
  options.max_attempts = 3;
  Tracer tracer(options);
  start_span(&tracer, "x", SpanKind::kInternal, "").end();
  tracer.shutdown(5s);
  EXPECT_EQ(down.calls.size(), 3u);
  EXPECT_EQ(tracer.stats().failed, 1u);
}

TEST(Tracer, InjectsItsContextIntoMessageHeaders) {
  Recorder recorder;
  Tracer tracer(test_options(recorder));
  Span producer = start_span(&tracer, "images publish", SpanKind::kProducer, kParent);
  std::vector<std::pair<std::string, std::string>> headers = {{"message_type", "X"},
                                                              {"traceparent", "old"}};
  inject_traceparent(headers, producer);
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers[1].second, producer.traceparent());
  std::vector<std::pair<std::string, std::string>> none;
  inject_traceparent(none, producer);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].first, "traceparent");
}

TEST(TracingConfig, ParsesKeyValuesSamplersAndUrls) {
  Result<std::vector<std::pair<std::string, std::string>>> kv =
      parse_key_values(" api-key = secret%20one ,x=1,, Authorization=Basic%3Dabc");
  ASSERT_TRUE(kv) << kv.error().message;
  ASSERT_EQ(kv->size(), 3u);
  EXPECT_EQ((*kv)[0], std::make_pair(std::string("api-key"), std::string("secret one")));
  EXPECT_EQ((*kv)[2], std::make_pair(std::string("Authorization"), std::string("Basic=abc")));
  EXPECT_TRUE(parse_key_values("")->empty());
  for (std::string_view bad : {"novalue", "=x", "a=%zz", "a=b%0d%0aX-Injected: 1", "a=%4"}) {
    Result<std::vector<std::pair<std::string, std::string>>> r = parse_key_values(bad);
    ASSERT_FALSE(r) << bad;
    // Never the value: it may be a token.
    EXPECT_EQ(r.error().message.find("Injected"), std::string::npos);
  }

  EXPECT_EQ(*parse_sampler("parentbased_traceidratio"), Sampler::kParentBasedTraceIdRatio);
  EXPECT_EQ(*parse_sampler("always_off"), Sampler::kAlwaysOff);
  EXPECT_FALSE(parse_sampler("jaeger_remote"));
  EXPECT_FALSE(parse_sampler("ALWAYS_ON"));
  EXPECT_DOUBLE_EQ(*parse_sampler_ratio("0.25"), 0.25);
  EXPECT_DOUBLE_EQ(*parse_sampler_ratio("1"), 1.0);
  for (std::string_view bad : {"", "1.5", "-0.1", "half", "0.5x", "nan"}) {
    EXPECT_FALSE(parse_sampler_ratio(bad)) << bad;
  }

  for (std::string_view good : {"http://127.0.0.1:4318", "https://collector.example/otlp/",
                                "http://[::1]:4318/v1/traces", "http://user:pw@host:1/x"}) {
    EXPECT_TRUE(is_http_url(good)) << good;
  }
  for (std::string_view bad : {"", "127.0.0.1:4318", "ftp://host", "http://", "http://:4318",
                               "http://host:0", "http://host:65536", "http://host:12x",
                               "http://ho st", "http://[::1", "grpc://host:4317"}) {
    EXPECT_FALSE(is_http_url(bad)) << bad;
  }
}

// A real HTTP exchange: the project's own server stands in for the collector's OTLP receiver.
TEST(Tracer, ExportsOverHttpToAReceiver) {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> received;  // content type, body
  std::string authorization;
  http::Router router;
  router.add(http::Verb::post, "/v1/traces", [&](const http::RequestContext& c) {
    const std::lock_guard lock(mutex);
    received.emplace_back(std::string(c.header("Content-Type")), c.request.body());
    authorization = std::string(c.header("Authorization"));
    http::Response response;
    response.body = "{}";
    return response;
  });
  http::testing::RunningServer receiver(std::move(router), {.body_limit = 1 << 20});
  TracerOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/v1/traces";
  options.service_name = "receiver-test";
  options.headers = {{"Authorization", "Bearer t0ken"}};
  options.schedule_delay = 1h;
  Tracer tracer(options);
  {
    Span span = start_span(&tracer, "GET /health", SpanKind::kServer, kParent);
    span.set("http.response.status_code", 200);
  }
  tracer.shutdown(5s);
  EXPECT_EQ(tracer.stats().exported, 1u);
  const std::lock_guard lock(mutex);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].first, "application/json");
  EXPECT_EQ(authorization, "Bearer t0ken");
  const json::value body = json::parse(received[0].second);
  EXPECT_EQ(body.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0).at("name"),
            "GET /health");
}

// The HTTP server's SERVER span: continues the caller's traceparent, hands its own context to the
// handler (RequestContext::traceparent and the request's header), is named after the route's
// template; health checks are not traced.
TEST(Tracer, TheServerSpansEachRequest) {
  Recorder recorder;
  Tracer tracer(test_options(recorder));
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> seen;  // context, header
  http::Router router;
  const auto handler = [&](const http::RequestContext& c) {
    const std::lock_guard lock(mutex);
    seen.emplace_back(c.traceparent, std::string(c.header("traceparent")));
    http::Response response;
    response.status = c.path == "/boom/1" ? 503 : 200;
    return response;
  };
  router.add(http::Verb::get, "/items/{id}", handler);
  router.add(http::Verb::get, "/boom/{id}", handler);
  router.add(http::Verb::get, "/health", handler);
  http::ServerOptions options;
  options.tracer = &tracer;
  options.server_name = "traced";
  http::testing::RunningServer server(std::move(router), options);
  http::testing::RawClient client(server.port());
  const auto get = [&](std::string_view target, std::string_view traceparent) {
    std::string request = "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n";
    if (!traceparent.empty()) request += "traceparent: " + std::string(traceparent) + "\r\n";
    return client.exchange(request + "\r\n").result_int();
  };
  EXPECT_EQ(get("/items/7?q=secret", kParent), 200u);
  EXPECT_EQ(get("/boom/1", "garbage"), 503u);
  EXPECT_EQ(get("/health", kParent), 200u);
  EXPECT_EQ(get("/nowhere", ""), 404u);
  // The connection ends a request's span after writing its answer, so the client may have the
  // answer first: one more request on the same connection (not traced) waits for that.
  EXPECT_EQ(get("/health", ""), 200u);
  tracer.shutdown(2s);

  const std::vector<json::object> spans = recorder.spans();
  ASSERT_EQ(spans.size(), 3u);  // not /health
  const json::object& item = spans[0];
  EXPECT_EQ(item.at("name").as_string(), "GET /items/{id}");
  EXPECT_EQ(item.at("kind").as_int64(), 2);
  EXPECT_EQ(item.at("traceId").as_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(item.at("parentSpanId").as_string(), "00f067aa0ba902b7");
  EXPECT_EQ(attribute(item, "http.route"), R"({"stringValue":"/items/{id}"})");
  EXPECT_EQ(attribute(item, "http.response.status_code"), R"({"intValue":"200"})");
  EXPECT_EQ(attribute(item, "dither.server"), R"({"stringValue":"traced"})");
  EXPECT_EQ(json::serialize(item).find("secret"), std::string::npos) << "the query stays out";
  EXPECT_FALSE(spans[1].contains("parentSpanId"));  // a malformed traceparent: a new trace
  EXPECT_EQ(spans[1].at("status").at("code").as_int64(), 2);
  EXPECT_EQ(spans[2].at("name").as_string(), "GET");  // no route matched
  ASSERT_EQ(seen.size(), 4u);                         // and the last /health, without a traceparent
  const std::string own =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-" + std::string(item.at("spanId").as_string()) + "-01";
  EXPECT_EQ(seen[0].first, own);
  EXPECT_EQ(seen[0].second, own);
  EXPECT_EQ(seen[2].first, std::string(kParent));  // /health: the caller's, untouched
}

// Without a tracer the handler gets the caller's valid traceparent, or "" for a malformed one.
TEST(Tracer, WithoutOneTheServerPassesAValidTraceparentOn) {
  std::vector<std::string> seen;
  http::Router router;
  router.add(http::Verb::get, "/x", [&](const http::RequestContext& c) {
    seen.push_back(c.traceparent);
    return http::Response{};
  });
  http::testing::RunningServer server(std::move(router));
  http::testing::RawClient client(server.port());
  for (std::string_view header : {kParent, std::string_view("00-bad")}) {
    client.exchange("GET /x HTTP/1.1\r\nHost: x\r\ntraceparent: " + std::string(header) +
                    "\r\n\r\n");
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], kParent);
  EXPECT_EQ(seen[1], "");
}

// A collector that takes the connection and never answers must not hold a shutdown past its
// budget.
TEST(Tracer, ShutdownIsBoundedWhenTheCollectorHangs) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 8), 0);  // the kernel completes handshakes; nobody reads
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  TracerOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/v1/traces";
  options.service_name = "hang-test";
  options.schedule_delay = 1h;
  options.timeout = 30s;
  Tracer tracer(options);
  start_span(&tracer, "x", SpanKind::kInternal, "").end();
  const auto started = std::chrono::steady_clock::now();
  tracer.shutdown(500ms);
  const auto took = std::chrono::steady_clock::now() - started;
  ::close(listener);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(tracer.stats().failed, 1u);
}

// What a span costs on the request path (printed; the bounds are loose: a shared machine).
TEST(Tracer, CostOfASpan) {
  constexpr int kSpans = 200'000;
  const auto per_span = [](auto&& make) {
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < kSpans; ++i) make();
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - started)
               .count() /
           kSpans;
  };
  const double off = per_span([] {
    Span span = start_span(nullptr, "GET /images/{uuid}", SpanKind::kServer, kParent);
    span.set("http.route", "/images/{uuid}").set("http.response.status_code", 200);
  });
  Recorder recorder;
  TracerOptions options = test_options(recorder);
  options.max_queue = kSpans;
  options.max_batch = kSpans + 1;  // never full: the exporter sleeps throughout
  Tracer tracer(options);
  const double on = per_span([&] {
    Span span = start_span(&tracer, "GET /images/{uuid}", SpanKind::kServer, kParent);
    span.set("http.route", "/images/{uuid}").set("http.response.status_code", 200);
  });
  options.sampler = Sampler::kAlwaysOff;
  Tracer unsampled(options);
  const double dropped = per_span([&] {
    Span span = start_span(&unsampled, "GET /images/{uuid}", SpanKind::kServer, kParent);
    span.set("http.route", "/images/{uuid}").set("http.response.status_code", 200);
  });
  // The exporter's side (its own thread): encoding a full batch.
  std::vector<std::unique_ptr<SpanData>> batch;
  for (int i = 0; i < 512; ++i) {
    auto span = std::make_unique<SpanData>();
    span->name = "GET /images/{uuid}";
    span->context = *parse_traceparent(kParent);
    span->parent_span_id = "00f067aa0ba902b7";
    span->attributes = {{"http.route", std::string("/images/{uuid}")},
                        {"http.response.status_code", int64_t{200}}};
    batch.push_back(std::move(span));
  }
  const auto encoding = std::chrono::steady_clock::now();
  const std::string body = otlp_json(batch, options);
  const double encode_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - encoding)
          .count();
  std::printf(
      "a server span with two attributes: off %.0f ns, on %.0f ns, sampled out %.0f ns; "
      "encoding 512 spans: %.0f us, %zu bytes\n",
      off, on, dropped, encode_us, body.size());
  EXPECT_LT(off, 2'000);
  EXPECT_LT(on, 50'000);
  tracer.shutdown(0ms);  // nothing to send anywhere: the spans are dropped
}

}  // namespace
}  // namespace dither::observability
