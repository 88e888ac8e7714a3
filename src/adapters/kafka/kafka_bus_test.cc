// The EventBus contract against a real Kafka broker, and what only Kafka does: a group sharing a
// topic's partitions, a killed consumer's uncommitted records going to the next one, an
// unreachable broker, topic creation.
//
// The broker is the one ctest starts (scripts/infra/kafka.sh, port DITHER_TEST_KAFKA_PORT). One
// test runs this program again as a child consumer (`--child-consumer TOPIC GROUP`) and kills it.
#include "adapters/kafka/kafka_bus.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "ports/testing/event_bus_contract.h"

extern char** environ;

namespace dither {
namespace {

using contract::Collector;
using contract::EventBusContract;
using contract::expect_ok;
using contract::unique_name;

#define DITHER_STRINGIFY2(x) #x
#define DITHER_STRINGIFY(x) DITHER_STRINGIFY2(x)
const std::string kBroker = "127.0.0.1:" DITHER_STRINGIFY(DITHER_TEST_KAFKA_PORT);

KafkaOptions test_options() {
  KafkaOptions options;
  options.bootstrap_servers = kBroker;
  options.client_id = "kafka-bus-test";
  return options;
}

// A bus on the test broker; a test failure that says how to start the broker when it is down.
std::unique_ptr<KafkaBus> open_bus(KafkaOptions options = test_options()) {
  Result<std::unique_ptr<KafkaBus>> bus = KafkaBus::open(std::move(options));
  if (!bus) {
    ADD_FAILURE() << bus.error().message;
    return nullptr;
  }
  if (Status up = (*bus)->ping(std::chrono::seconds{5}); !up) {
    ADD_FAILURE() << "no Kafka broker at " << kBroker << " (" << up.error().message
                  << "). ctest starts it as a fixture; by hand: DITHER_INFRA_RUN=<build>/infra-test"
                  << " KAFKA_PORT=" << DITHER_TEST_KAFKA_PORT << " scripts/infra/kafka.sh start";
    return nullptr;
  }
  return std::move(*bus);
}

INSTANTIATE_TEST_SUITE_P(Kafka, EventBusContract,
                         ::testing::Values(contract::EventBusFactory{
                             "kafka", []() -> std::unique_ptr<EventBus> { return open_bus(); }}),
                         contract::FactoryName());

// Polls `done` every 20 ms until it holds or `deadline` passed.
bool eventually(const std::function<bool()>& done,
                std::chrono::milliseconds deadline = contract::kDeliveryDeadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return true;
}

Message message(const std::string& topic, const std::string& key, const std::string& body) {
  Message m = make_message(topic, kImageUploaded, key, "");
  m.body = body;
  return m;
}

TEST(KafkaBus, TwoConsumersOfOneGroupShareATwoPartitionTopic) {
  const std::string topic = unique_name("shared");
  const std::string group = unique_name("pair");
  Collector got_a;  // before the buses: they stop before it goes away
  Collector got_b;
  auto a = open_bus();
  auto b = open_bus();
  ASSERT_TRUE(a && b);
  expect_ok(a->create_topics({topic}, 2, 1));
  a->subscribe({topic, group, got_a.handler()});
  ASSERT_TRUE(a->start().ok());
  ASSERT_TRUE(eventually([&] { return a->assigned_partitions(group) == 2; }))
      << "the first consumer never got both partitions";
  b->subscribe({topic, group, got_b.handler()});
  ASSERT_TRUE(b->start().ok());
  ASSERT_TRUE(eventually([&] {
    return a->assigned_partitions(group) == 1 && b->assigned_partitions(group) == 1;
  })) << "the partitions were not shared: "
      << a->assigned_partitions(group) << " and " << b->assigned_partitions(group);

  constexpr int kMessages = 40;
  for (int i = 0; i < kMessages; ++i) {
    expect_ok(a->publish(message(topic, new_image_id().value, "m" + std::to_string(i))));
  }
  ASSERT_TRUE(eventually(
      [&] { return got_a.messages().size() + got_b.messages().size() >= size_t{kMessages}; }));
  std::this_thread::sleep_for(std::chrono::seconds{1});  // a duplicate would show up by now
  std::multiset<std::string> all;
  for (const std::string& body : got_a.bodies()) all.insert(body);
  for (const std::string& body : got_b.bodies()) all.insert(body);
  EXPECT_EQ(all.size(), size_t{kMessages}) << "each message is handled once";
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(all.count("m" + std::to_string(i)), 1u) << i;
  EXPECT_GT(got_a.messages().size(), 0u);
  EXPECT_GT(got_b.messages().size(), 0u);
}

// While a handler backs off, the consumer keeps polling with its partitions paused: records
// already fetched from the other partition must come later, in order, none lost nor doubled.
TEST(KafkaBus, BackingOffLosesAndReordersNothing) {
  const std::string topic = unique_name("backoff");
  std::map<std::string, int> failures_left = {{"0:0", 3}, {"1:4", 2}};
  std::mutex mutex;
  std::vector<std::string> handled;
  auto bus = open_bus();
  ASSERT_TRUE(bus);
  expect_ok(bus->create_topics({topic}, 2, 1));
  bus->subscribe({topic, unique_name("g"), [&](const Message& m) -> Status {
                    std::lock_guard lock(mutex);
                    if (failures_left[m.body] > 0) {
                      const bool transient = --failures_left[m.body] % 2 == 0;
                      return make_error(transient ? ErrorKind::kUnavailable : ErrorKind::kInternal,
                                        "not yet");
                    }
                    handled.push_back(m.body);
                    return {};
                  }});
  constexpr int kKeys = 4;
  constexpr int kEach = 10;
  // Published before start(), so that the first fetch brings records of both partitions.
  for (int i = 0; i < kEach; ++i) {
    for (int k = 0; k < kKeys; ++k) {
      const std::string body = std::to_string(k) + ":" + std::to_string(i);
      expect_ok(bus->publish(message(topic, "key-" + std::to_string(k), body)));
    }
  }
  ASSERT_TRUE(bus->start().ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return handled.size() >= size_t{kKeys * kEach};
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds{500});
  std::lock_guard lock(mutex);
  ASSERT_EQ(handled.size(), size_t{kKeys * kEach}) << "each record is handled once";
  std::map<char, std::vector<std::string>> per_key;
  for (const std::string& body : handled) per_key[body[0]].push_back(body);
  for (int k = 0; k < kKeys; ++k) {
    std::vector<std::string> expected;
    for (int i = 0; i < kEach; ++i) expected.push_back(std::to_string(k) + ":" + std::to_string(i));
    EXPECT_EQ(per_key[static_cast<char>('0' + k)], expected) << "key " << k;
  }
}

// A child process: this program with --child-consumer, its fd 3 the write end of a pipe.
struct Child {
  pid_t pid = -1;
  int out = -1;  // what the child writes to its fd 3

  // The next line the child wrote, "" after `deadline` or at its end.
  std::string read_line(std::chrono::milliseconds deadline) {
    std::string line;
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{out, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char c = 0;
      if (::read(out, &c, 1) != 1) return "";
      if (c == '\n') return line;
      line.push_back(c);
    }
  }

  void kill() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
    if (out >= 0) ::close(out);
    out = -1;
  }
  ~Child() { kill(); }
};

Child spawn_child_consumer(const std::string& topic, const std::string& group) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::string self = "/proc/self/exe";
  std::string flag = "--child-consumer";
  std::vector<char*> argv = {self.data(), flag.data(), const_cast<char*>(topic.c_str()),
                             const_cast<char*>(group.c_str()), nullptr};
  Child child;
  EXPECT_EQ(posix_spawn(&child.pid, self.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  child.out = fds[0];
  return child;
}

TEST(KafkaBus, AKilledConsumersUncommittedRecordsGoToTheNextConsumer) {
  const std::string topic = unique_name("killed");
  const std::string group = unique_name("victim");
  Collector next;
  auto bus = open_bus();
  ASSERT_TRUE(bus);
  expect_ok(bus->create_topics({topic}, 1, 1));  // one partition: one order for all
  for (const char* body : {"a", "b", "stall", "c"}) {
    expect_ok(bus->publish(message(topic, "k", body)));
  }

  Child child = spawn_child_consumer(topic, group);
  std::vector<std::string> lines;
  for (;;) {
    std::string line = child.read_line(contract::kDeliveryDeadline);
    ASSERT_FALSE(line.empty()) << "the child consumer stopped talking after " << lines.size()
                               << " lines";
    lines.push_back(line);
    if (line == "stalled") break;
  }
  EXPECT_EQ(lines, (std::vector<std::string>{"handled a", "handled b", "stalled"}));
  // a and b were committed (asynchronously: give the commits time to arrive), "stall" was not.
  std::this_thread::sleep_for(std::chrono::seconds{1});
  child.kill();

  // The dead member keeps its partition until its session times out (10 s).
  bus->subscribe({topic, group, next.handler()});
  ASSERT_TRUE(bus->start().ok());
  ASSERT_TRUE(next.wait_for_body("c")) << "got " << next.messages().size();
  EXPECT_EQ(next.bodies(), (std::vector<std::string>{"stall", "c"}));
}

TEST(KafkaBus, DeadLettersSayWhereTheRecordWas) {
  const std::string topic = unique_name("where");
  Collector dlq;
  auto bus = open_bus();
  ASSERT_TRUE(bus);
  bus->subscribe({topic, unique_name("strict"), [](const Message&) -> Status {
                    return make_error(ErrorKind::kInvalidArgument, "no");
                  }});
  bus->subscribe({Topics::dead_letter(topic), unique_name("dlq"), dlq.handler()});
  ASSERT_TRUE(bus->start().ok());
  expect_ok(bus->publish(message(topic, "k", "first")));
  ASSERT_TRUE(dlq.wait_for(1));
  const Message dead = dlq.messages()[0];
  EXPECT_EQ(dead.header("dead_letter_offset").value_or(""), "0");
  const std::string partition(dead.header("dead_letter_partition").value_or(""));
  EXPECT_TRUE(partition == "0" || partition == "1") << partition;
}

// What a BusObserver hears: counts per topic and group, and the lag reports.
class RecordingObserver final : public BusObserver {
 public:
  void consumed(std::string_view topic, std::string_view group) override {
    std::lock_guard lock(mutex_);
    ++consumed_[std::string(topic) + "/" + std::string(group)];
  }
  void dead_lettered(std::string_view topic, std::string_view group) override {
    std::lock_guard lock(mutex_);
    ++dead_[std::string(topic) + "/" + std::string(group)];
  }
  void lag(std::string_view group, const std::vector<PartitionLag>& partitions) override {
    std::lock_guard lock(mutex_);
    lags_[std::string(group)] = partitions;
  }
  int consumed(const std::string& key) {
    std::lock_guard lock(mutex_);
    return consumed_[key];
  }
  int dead(const std::string& key) {
    std::lock_guard lock(mutex_);
    return dead_[key];
  }
  std::optional<std::vector<PartitionLag>> lags(const std::string& group) {
    std::lock_guard lock(mutex_);
    auto it = lags_.find(group);
    if (it == lags_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, int> consumed_, dead_;
  std::map<std::string, std::vector<PartitionLag>> lags_;
};

TEST(KafkaBus, TheObserverHearsWhatIsConsumedDeadLetteredAndTheLag) {
  const std::string topic = unique_name("observed");
  const std::string group = unique_name("observer");
  RecordingObserver observer;
  KafkaOptions options = test_options();
  options.stats_interval = std::chrono::milliseconds{200};
  auto bus = open_bus(options);
  ASSERT_TRUE(bus);
  bus->set_observer(&observer);
  bus->subscribe({topic, group, [](const Message& m) -> Status {
                    if (m.body == "poison") return make_error(ErrorKind::kInvalidArgument, "no");
                    return {};
                  }});
  ASSERT_TRUE(bus->start().ok());
  for (const char* body : {"a", "poison", "b"}) expect_ok(bus->publish(message(topic, body, body)));
  const std::string key = topic + "/" + group;
  ASSERT_TRUE(eventually([&] { return observer.consumed(key) == 2 && observer.dead(key) == 1; }))
      << observer.consumed(key) << " consumed, " << observer.dead(key) << " dead-lettered";
  // Once everything is committed, the statistics report each held partition with no lag.
  ASSERT_TRUE(eventually(
      [&] {
        auto lags = observer.lags(group);
        if (!lags || lags->size() != 2) return false;  // the topic's two partitions, both ours
        for (const auto& p : *lags) {
          if (p.topic != topic || p.messages != 0) return false;
        }
        return true;
      },
      std::chrono::seconds{20}))
      << [&] {
           std::string seen;
           auto lags = observer.lags(group);
           if (!lags) return std::string("no lag report");
           for (const auto& p : *lags) {
             seen += p.topic + "[" + std::to_string(p.partition) +
                     "]=" + std::to_string(p.messages) + " ";
           }
           return "last report: " + seen;
         }();
  bus->stop();
}

TEST(KafkaBus, AnUnreachableBrokerIsUnavailableInBoundedTime) {
  auto logs = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", logs));
  KafkaOptions options = test_options();
  options.bootstrap_servers = "127.0.0.1:1";  // nothing listens there
  options.message_timeout = std::chrono::milliseconds{1500};
  Result<std::unique_ptr<KafkaBus>> bus = KafkaBus::open(options);
  ASSERT_TRUE(bus.ok()) << bus.error().message;

  const auto started = std::chrono::steady_clock::now();
  Status published = (*bus)->publish(message("nowhere", "k", "lost"));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(published.ok());
  EXPECT_EQ(published.error().kind, ErrorKind::kUnavailable) << published.error().message;
  EXPECT_LT(took, std::chrono::seconds{5});

  Status ping = (*bus)->ping(std::chrono::milliseconds{500});
  ASSERT_FALSE(ping.ok());
  EXPECT_EQ(ping.error().kind, ErrorKind::kUnavailable) << ping.error().message;
  Status created = (*bus)->create_topics({"nowhere"}, 1, 1);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().kind, ErrorKind::kUnavailable) << created.error().message;
  (*bus)->stop();
  spdlog::set_default_logger(previous);

  bool from_librdkafka = false;
  for (const std::string& line : logs->last_formatted()) {
    if (line.find("kafka kafka-bus-test#producer") != std::string::npos) from_librdkafka = true;
  }
  EXPECT_TRUE(from_librdkafka) << "librdkafka's complaints about the broker reach spdlog";
}

TEST(KafkaBus, CreateTopicsKeepsExistingOnesAndRejectsBadRequests) {
  auto bus = open_bus();
  ASSERT_TRUE(bus);
  const std::string topic = unique_name("created");
  expect_ok(bus->create_topics({topic, topic + ".dlq"}, 3, 1));
  expect_ok(bus->create_topics({topic}, 3, 1));
  Status bad_name = bus->create_topics({"no spaces allowed"}, 1, 1);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error().kind, ErrorKind::kInvalidArgument) << bad_name.error().message;
  Status too_many_copies = bus->create_topics({unique_name("replicated")}, 1, 3);
  ASSERT_FALSE(too_many_copies.ok());
  EXPECT_EQ(too_many_copies.error().kind, ErrorKind::kInvalidArgument)
      << too_many_copies.error().message;
}

TEST(KafkaBus, OpenRejectsBadOptions) {
  KafkaOptions options = test_options();
  options.extra = {{"no.such.property", "1"}};
  Result<std::unique_ptr<KafkaBus>> bad = KafkaBus::open(options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("no.such.property"), std::string::npos);
  options = test_options();
  options.bootstrap_servers = "";
  EXPECT_FALSE(KafkaBus::open(options).ok());
}

// The child consumer: reports each record on fd 3 and hangs on "stall" until it is killed.
int run_child_consumer(const std::string& topic, const std::string& group) {
  Result<std::unique_ptr<KafkaBus>> bus = KafkaBus::open(test_options());
  if (!bus) return 2;
  (*bus)->subscribe({topic, group, [](const Message& m) -> Status {
                       const std::string line =
                           (m.body == "stall" ? "stalled" : "handled " + m.body) + "\n";
                       if (::write(3, line.data(), line.size()) < 0) std::abort();
                       while (m.body == "stall") ::pause();
                       return {};
                     }});
  if (!(*bus)->start()) return 3;
  for (;;) ::pause();
}

}  // namespace
}  // namespace dither

int main(int argc, char** argv) {
  if (argc == 4 && std::string_view(argv[1]) == "--child-consumer") {
    return dither::run_child_consumer(argv[2], argv[3]);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
