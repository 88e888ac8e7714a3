#include "app/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace dither {
namespace {

Result<Config> load(std::map<std::string, std::string> env) {
  return load_config([env = std::move(env)](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(Config, DefaultsWhenNothingIsSet) {
  Result<Config> c = load({});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->port, 8080);
  EXPECT_EQ(c->data_dir, "data");
  EXPECT_EQ(c->public_base_url, "http://127.0.0.1:8080");
  EXPECT_EQ(c->limits.max_bytes, 8u * 1024 * 1024);
  EXPECT_EQ(c->limits.max_pixels, 50'000'000u);
  EXPECT_EQ(c->limits.max_animation_frames, 300);
  EXPECT_EQ(c->limits.max_animation_pixels, 50'000'000u);
  EXPECT_TRUE(c->auto_dither.enabled);
  EXPECT_EQ(c->topics.image, "images");
  EXPECT_EQ(c->topics.dither, "dithers");
}

TEST(Config, ReadsEverything) {
  Result<Config> c = load({{"DITHER_PORT", "9000"},
                           {"DITHER_DATA_DIR", "/tmp/x"},
                           {"PUBLIC_BASE_URL", "https://dither.example/"},
                           {"MAX_UPLOAD_BYTES", "1000"},
                           {"MAX_PIXELS", "2000"},
                           {"MAX_ANIMATION_FRAMES", "12"},
                           {"MAX_ANIMATION_PIXELS", "60000000000"},
                           {"AUTO_DITHER", "off"},
                           {"AUTO_DITHER_OPTIONS", "algorithm=bayer&palette=ega"},
                           {"KAFKA_IMAGE_TOPIC", "img"},
                           {"KAFKA_DITHER_TOPIC", "dit"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->port, 9000);
  EXPECT_EQ(c->public_base_url, "https://dither.example");
  EXPECT_EQ(c->limits.max_bytes, 1000u);
  EXPECT_EQ(c->limits.max_pixels, 2000u);
  EXPECT_EQ(c->limits.max_animation_frames, 12);
  EXPECT_EQ(c->limits.max_animation_pixels, 60'000'000'000u);
  EXPECT_FALSE(c->auto_dither.enabled);
  ASSERT_EQ(c->auto_dither.options.size(), 2u);
  EXPECT_EQ(c->auto_dither.options[0].second, "bayer");
  EXPECT_EQ(c->topics.image, "img");
}

// AUTO_DITHER_OPTIONS is a query string, decoded by the same decoder as requests' queries.
TEST(Config, AutoDitherOptionsArePercentDecoded) {
  Result<Config> c =
      load({{"AUTO_DITHER_OPTIONS", "palette=%23ff0000%2C%230000FF&algorithm=floyd-steinberg"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->auto_dither.options.size(), 2u);
  EXPECT_EQ(c->auto_dither.options[0].second, "#ff0000,#0000FF");
}

// AUTO_DITHER_PRESET: a built-in preset; AUTO_DITHER_OPTIONS, when given too, over it.
TEST(Config, AutoDitherPresetAndPresetsOnly) {
  Result<Config> c =
      load({{"AUTO_DITHER_PRESET", "mac"}, {"PRESETS_ONLY", "on"}, {"QUOTA_PRESETS", "7"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  Result<pipeline::ProcessOptions> o = c->auto_dither.resolve();
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->palette.to_string(), "bw");
  EXPECT_EQ(o->dither.algorithm, engine::Algorithm::kAtkinson);
  EXPECT_TRUE(c->presets_only);
  EXPECT_EQ(c->quotas.presets, 7);
  c = load({{"AUTO_DITHER_PRESET", "mac"}, {"AUTO_DITHER_OPTIONS", "palette=ega"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  o = c->auto_dither.resolve();
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->palette.to_string(), "ega");
  EXPECT_EQ(o->dither.algorithm, engine::Algorithm::kAtkinson);
  EXPECT_FALSE(load({}).value().presets_only);
}

TEST(Config, MalformedValuesNameTheVariable) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"DITHER_PORT", "http"},
                                                        {"DITHER_PORT", "70000"},
                                                        {"MAX_UPLOAD_BYTES", "-1"},
                                                        {"MAX_ANIMATION_FRAMES", "0"},
                                                        {"MAX_ANIMATION_FRAMES", "100001"},
                                                        {"MAX_ANIMATION_FRAMES", "many"},
                                                        {"MAX_ANIMATION_PIXELS", "0"},
                                                        {"MAX_ANIMATION_PIXELS", "68719476737"},
                                                        {"AUTO_DITHER", "maybe"},
                                                        {"AUTO_DITHER_OPTIONS", "algorithm=nope"},
                                                        {"AUTO_DITHER_OPTIONS", "channels=1"},
                                                        {"AUTO_DITHER_OPTIONS", "palette=%zz"},
                                                        {"PUBLIC_BASE_URL", "ftp://x"},
                                                        {"LOG_LEVEL", "loud"},
                                                        {"GATEWAY_UPSTREAM", "carrier-pigeon"},
                                                        {"KAFKA_DITHER_TOPIC", "images"},
                                                        {"AUTO_DITHER_PRESET", "nope"},
                                                        {"PRESETS_ONLY", "maybe"},
                                                        {"QUOTA_PRESETS", "-1"},
                                                        {"METRICS_ADDRESS", "9464"},
                                                        {"METRICS_ADDRESS", "host:99999"},
                                                        {"LOG_FORMAT", "JSON"},
                                                        {"LOG_FORMAT", "logfmt"},
                                                        {"ACCESS_LOG", "sometimes"}}) {
    Result<Config> c = load({{name, value}});
    ASSERT_FALSE(c.ok()) << name << "=" << value;
    EXPECT_NE(c.error().message.find(name), std::string::npos) << c.error().message;
  }
}

TEST(Config, LogFormatAndAccessLog) {
  Result<Config> defaults = load({});
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->log_format, "text");
  EXPECT_TRUE(defaults->access_log);
  Result<Config> c = load({{"LOG_FORMAT", "json"}, {"ACCESS_LOG", "off"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->log_format, "json");
  EXPECT_FALSE(c->access_log);
  const auto described = describe(*c);
  EXPECT_NE(std::find(described.begin(), described.end(),
                      std::pair<std::string, std::string>{"LOG_FORMAT", "json"}),
            described.end());
  EXPECT_NE(std::find(described.begin(), described.end(),
                      std::pair<std::string, std::string>{"ACCESS_LOG", "off"}),
            described.end());
  EXPECT_EQ(program_name(Roles{}), "ditherd");
  EXPECT_EQ(program_name(Roles{.gateway = true, .upload = false, .dither = false, .notify = false}),
            "api-gateway");
  EXPECT_EQ(program_name(Roles{.gateway = false, .upload = false, .dither = true, .notify = false}),
            "dithering-service");
}

TEST(Config, DistributedAdaptersAreOffUntilTheirFirstVariable) {
  Result<Config> c = load({});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->kafka.enabled());
  EXPECT_FALSE(c->postgres.enabled());
  EXPECT_FALSE(c->s3.enabled());
  EXPECT_FALSE(c->cloudinary.enabled());
}

TEST(Config, ReadsTheNotesVariablesAndHidesSecrets) {
  Result<Config> c = load({{"KAFKA_SERVER", "k1:9092,k2:9092"},
                           {"KAFKA_PARTITIONS", "6"},
                           {"KAFKA_PROPERTIES", "security.protocol=SASL_SSL;sasl.password=p;"},
                           {"POSTGRES_HOST", "db"},
                           {"POSTGRES_PORT", "6543"},
                           {"POSTGRES_USER", "u"},
                           {"POSTGRES_PASSWORD", "pw-secret"},
                           {"POSTGRES_DB", "images"},
                           {"POSTGRES_POOL_SIZE", "3"},
                           {"S3_ENDPOINT", "http://127.0.0.1:7070/"},
                           {"S3_ACCESS_KEY", "ak"},
                           {"S3_SECRET_KEY", "s3-secret"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->kafka.servers, "k1:9092,k2:9092");
  EXPECT_EQ(c->kafka.partitions, 6);
  ASSERT_EQ(c->kafka.properties.size(), 2u);
  EXPECT_EQ(c->kafka.properties[1].first, "sasl.password");
  EXPECT_EQ(c->kafka.properties[1].second, "p");
  EXPECT_EQ(c->postgres.port, 6543);
  EXPECT_EQ(c->postgres.pool_size, 3);
  EXPECT_EQ(c->s3.endpoint, "http://127.0.0.1:7070");
  EXPECT_EQ(c->s3.public_base_url, "http://127.0.0.1:8080/files/");
  std::string logged;
  for (const auto& [k, v] : describe(*c)) logged += k + "=" + v + "\n";
  EXPECT_EQ(logged.find("pw-secret"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("s3-secret"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("sasl.password=p"), std::string::npos) << logged;
  EXPECT_NE(logged.find("POSTGRES_HOST=db"), std::string::npos) << logged;
}

TEST(Config, RefusesIncompleteOrConflictingStorage) {
  EXPECT_FALSE(load({{"S3_ENDPOINT", "http://x:1"}}).ok());  // no keys
  EXPECT_FALSE(
      load({{"S3_ENDPOINT", "ftp://x"}, {"S3_ACCESS_KEY", "a"}, {"S3_SECRET_KEY", "b"}}).ok());
  EXPECT_FALSE(load({{"CLOUDINARY_CLOUD_NAME", "demo"}}).ok());  // no key/secret
  EXPECT_FALSE(load({{"CLOUDINARY_CLOUD_NAME", "demo"},
                     {"CLOUDINARY_API_KEY", "k"},
                     {"CLOUDINARY_API_SECRET", "s"},
                     {"S3_ENDPOINT", "http://x:1"},
                     {"S3_ACCESS_KEY", "a"},
                     {"S3_SECRET_KEY", "b"}})
                   .ok());
  EXPECT_FALSE(load({{"KAFKA_PROPERTIES", "novalue"}}).ok());
  EXPECT_FALSE(load({{"POSTGRES_PORT", "0"}}).ok());
  EXPECT_FALSE(load({{"KAFKA_PARTITIONS", "0"}}).ok());
}

TEST(Config, MailSettings) {
  Result<Config> c = load({});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->smtp.enabled());  // .eml files by default
  c = load({{"SMTP_HOST", "mail.example.org"},
            {"SMTP_PORT", "465"},
            {"SMTP_SECURITY", "tls"},
            {"SMTP_PASSWORD", "mail-secret"},
            {"MAIL_FROM", "Pictures <pictures@example.org>"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->smtp.enabled());
  EXPECT_EQ(c->smtp.port, 465);
  std::string logged;
  for (const auto& [k, v] : describe(*c)) logged += k + "=" + v + "\n";
  EXPECT_EQ(logged.find("mail-secret"), std::string::npos) << logged;
  EXPECT_FALSE(load({{"SMTP_SECURITY", "ssl"}}).ok());
  EXPECT_FALSE(load({{"MAIL_FROM", "not an address"}}).ok());
  EXPECT_FALSE(load({{"MAIL_FROM", "a@b.example\r\nBcc: x@y.example"}}).ok());
  EXPECT_FALSE(load({{"NOTIFY_MAX_ATTEMPTS", "0"}}).ok());
  EXPECT_FALSE(load({{"SMTP_VERIFY_TLS", "maybe"}}).ok());
}

TEST(Config, SecuritySettingsAndTheirSecretsHidden) {
  Result<Config> defaults = load({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->security.link_ttl_seconds, 3600);
  EXPECT_EQ(defaults->security.mail_link_ttl_seconds, 7 * 86400);
  EXPECT_EQ(defaults->security.mail_max_per_hour, 10);
  EXPECT_EQ(defaults->security.session_lifetime_days, 30);
  EXPECT_EQ(defaults->security.auth_cache_seconds, 60) << "SQLite: its revocation stamp";
  EXPECT_TRUE(defaults->security.link_keys.empty()) << "generated into the data directory";
  Result<Config> pg = load({{"POSTGRES_HOST", "db"}});
  ASSERT_TRUE(pg.ok());
  EXPECT_EQ(pg->security.auth_cache_seconds, 5);

  const std::string key_a(40, 'a');
  const std::string key_b(32, 'b');
  Result<Config> c = load({{"LINK_SIGNING_KEYS", key_a + ", " + key_b},
                           {"API_KEY_PEPPER", std::string(32, 'p')},
                           {"SERVICE_TOKEN", std::string(32, 't')},
                           {"MAIL_MAX_PER_HOUR", "0"},
                           {"ALLOWED_HOSTS", "dither.example, cdn.example:8443"},
                           {"AUTH_CACHE_SECONDS", "2"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->security.link_keys, (std::vector<std::string>{key_a, key_b}));
  EXPECT_EQ(c->security.mail_max_per_hour, 0);
  EXPECT_EQ(c->security.allowed_hosts,
            (std::vector<std::string>{"dither.example", "cdn.example:8443"}));
  EXPECT_EQ(c->security.auth_cache_seconds, 2);
  for (const auto& [name, value] : describe(*c)) {
    EXPECT_EQ(value.find("aaaa"), std::string::npos) << name;
    EXPECT_EQ(value.find("bbbb"), std::string::npos) << name;
    EXPECT_EQ(value.find("pppp"), std::string::npos) << name;
    EXPECT_EQ(value.find("tttt"), std::string::npos) << name;
  }
  for (const auto& [name, value] :
       std::map<std::string, std::string>{{"LINK_SIGNING_KEYS", "short"},
                                          {"API_KEY_PEPPER", "short"},
                                          {"SERVICE_TOKEN", "short"},
                                          {"LINK_TTL_SECONDS", "10"},
                                          {"MAIL_MAX_PER_HOUR", "-1"},
                                          {"SESSION_LIFETIME_DAYS", "0"}}) {
    Result<Config> bad = load({{name, value}});
    ASSERT_FALSE(bad.ok()) << name;
    EXPECT_NE(bad.error().message.find(name), std::string::npos) << bad.error().message;
    EXPECT_EQ(bad.error().message.find("short"), std::string::npos) << "a secret is never echoed";
  }
}

TEST(Config, UrlFetchingIsOffUnlessHostsAreListed) {
  Result<Config> defaults = load({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->fetch_allowed_hosts.empty());
  EXPECT_FALSE(defaults->fetch_allow_loopback);
  Result<Config> c = load(
      {{"FETCH_ALLOWED_HOSTS", "images.example, CDN.example"}, {"FETCH_ALLOW_LOOPBACK", "on"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->fetch_allowed_hosts, (std::vector<std::string>{"images.example", "CDN.example"}));
  EXPECT_TRUE(c->fetch_allow_loopback);
  std::map<std::string, std::string> logged;
  for (const auto& [k, v] : describe(*c)) logged[k] = v;
  EXPECT_EQ(logged["FETCH_ALLOWED_HOSTS"], "images.example,CDN.example");
  EXPECT_EQ(logged["FETCH_ALLOW_LOOPBACK"], "on");
  Result<Config> bad = load({{"FETCH_ALLOW_LOOPBACK", "yes please"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("FETCH_ALLOW_LOOPBACK"), std::string::npos);
}

// Traces (docs/TRACING.md): off until an endpoint is set; the standard OTEL_* variables.
TEST(Config, TracingIsOffUntilAnEndpointIsSet) {
  Result<Config> c = load({});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->tracing.endpoint, "");
  EXPECT_EQ(c->tracing.sampler, observability::Sampler::kParentBasedAlwaysOn);
  c = load({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->tracing.endpoint, "http://127.0.0.1:4318/v1/traces");
  c = load({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example/otlp"},
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/custom/path"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->tracing.endpoint, "http://127.0.0.1:9/custom/path");  // the full URL wins, as is
  c = load(
      {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"}, {"OTEL_SDK_DISABLED", "TRUE"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->tracing.endpoint, "");
}

TEST(Config, ReadsTheOtelVariables) {
  Result<Config> c = load({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:pw@127.0.0.1:4318"},
                           {"OTEL_SERVICE_NAME", "dither-edge"},
                           {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=img"},
                           {"OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20sekrit,x-t=1"},
                           {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
                           {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"},
                           {"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
                           {"OTEL_TRACES_SAMPLER_ARG", "0.125"},
                           {"OTEL_BSP_SCHEDULE_DELAY", "200"},
                           {"OTEL_BSP_MAX_QUEUE_SIZE", "100"},
                           {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"},
                           {"OTEL_SDK_DISABLED", "false"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  const observability::TracerOptions& t = c->tracing;
  EXPECT_EQ(t.service_name, "dither-edge");
  ASSERT_EQ(t.resource.size(), 2u);
  EXPECT_EQ(t.resource[1].second, "img");
  ASSERT_EQ(t.headers.size(), 2u);
  EXPECT_EQ(t.headers[0].second, "Bearer sekrit");
  EXPECT_EQ(t.timeout, std::chrono::milliseconds{2500});
  EXPECT_EQ(t.sampler, observability::Sampler::kParentBasedTraceIdRatio);
  EXPECT_DOUBLE_EQ(t.ratio, 0.125);
  EXPECT_EQ(t.schedule_delay, std::chrono::milliseconds{200});
  EXPECT_EQ(t.max_queue, 100u);
  EXPECT_EQ(t.max_batch, 10u);
  std::map<std::string, std::string> logged;
  for (const auto& [k, v] : describe(*c)) logged[k] = v;
  EXPECT_EQ(logged["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
            "http://(hidden)@127.0.0.1:4318/v1/traces");
  EXPECT_EQ(logged["OTEL_EXPORTER_OTLP_HEADERS"], "(2 hidden)");
  EXPECT_EQ(logged["OTEL_TRACES_SAMPLER"], "parentbased_traceidratio");
  for (const auto& [k, v] : logged) EXPECT_EQ(v.find("sekrit"), std::string::npos) << k;
  // A resource's service.name names the service when OTEL_SERVICE_NAME does not; a ratio for
  // another sampler is ignored.
  c = load({{"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource"},
            {"OTEL_TRACES_SAMPLER", "always_on"},
            {"OTEL_TRACES_SAMPLER_ARG", "not a number"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->tracing.service_name, "from-resource");
}

TEST(Config, MalformedOtelVariablesNameTheVariable) {
  for (const std::map<std::string, std::string>& env :
       std::vector<std::map<std::string, std::string>>{
           {{"OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"}},
           {{"OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://127.0.0.1:4317"}},
           {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://host:99999/v1/traces"}},
           {{"OTEL_SDK_DISABLED", "yes"}},
           {{"OTEL_TRACES_SAMPLER", "jaeger_remote"}},
           {{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "2"}},
           {{"OTEL_EXPORTER_OTLP_HEADERS", "api-key"}},
           {{"OTEL_EXPORTER_OTLP_HEADERS", "bad name=sekrit"}},
           {{"OTEL_RESOURCE_ATTRIBUTES", "=x"}},
           {{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
           {{"OTEL_EXPORTER_OTLP_TIMEOUT", "0"}},
           {{"OTEL_BSP_SCHEDULE_DELAY", "soon"}},
           {{"OTEL_BSP_MAX_QUEUE_SIZE", "0"}},
           {{"OTEL_BSP_MAX_QUEUE_SIZE", "10"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "11"}},
       }) {
    Result<Config> c = load(env);
    const std::string name = env.rbegin()->first;
    ASSERT_FALSE(c.ok()) << name << "=" << env.rbegin()->second;
    EXPECT_NE(c.error().message.find(name), std::string::npos) << c.error().message;
    EXPECT_EQ(c.error().message.find("sekrit"), std::string::npos) << c.error().message;
  }
}

}  // namespace
}  // namespace dither
