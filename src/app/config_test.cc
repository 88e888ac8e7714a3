#include "app/config.h"

#include <gtest/gtest.h>

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
                                                        {"METRICS_ADDRESS", "host:99999"}}) {
    Result<Config> c = load({{name, value}});
    ASSERT_FALSE(c.ok()) << name << "=" << value;
    EXPECT_NE(c.error().message.find(name), std::string::npos) << c.error().message;
  }
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
  EXPECT_EQ(defaults->security.auth_cache_seconds, 0) << "SQLite: revocation at once";
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

}  // namespace
}  // namespace dither
