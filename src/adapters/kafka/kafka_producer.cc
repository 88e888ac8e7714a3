#include "adapters/kafka/kafka_producer.h"

#include <spdlog/spdlog.h>

#include <array>
#include <condition_variable>
#include <mutex>

namespace dither::kafka {
namespace {

// One message's delivery report, shared by its publisher and librdkafka's per-message opaque (a
// heap-allocated shared_ptr that the report callback deletes), so a publisher that gave up waiting
// leaves nothing dangling.
struct Delivery {
  std::mutex mutex;
  std::condition_variable reported;
  bool done = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
};
using DeliveryRef = std::shared_ptr<Delivery>;

void on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* record, void* /*opaque*/) {
  auto* ref = static_cast<DeliveryRef*>(record->_private);
  if (ref == nullptr) return;
  {
    std::lock_guard lock((*ref)->mutex);
    (*ref)->done = true;
    (*ref)->err = record->err;
  }
  (*ref)->reported.notify_all();
  delete ref;
}

constexpr std::chrono::milliseconds kReportMargin{2500};

std::string millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()); }

rd_kafka_vu_t vu(rd_kafka_vtype_t type) {
  rd_kafka_vu_t v{};
  v.vtype = type;
  return v;
}

}  // namespace

Producer::Producer(Handle rk, std::chrono::milliseconds message_timeout)
    : rk_(std::move(rk)), message_timeout_(message_timeout), poller_([this] { poll_loop(); }) {}

Result<std::unique_ptr<Producer>> Producer::open(const KafkaOptions& options) {
  const Settings settings = {
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"message.timeout.ms", millis(options.message_timeout)},
      // A request the broker never answers must not outlive the message's own deadline.
      {"request.timeout.ms", millis(options.message_timeout)},
      // Publishers wait for each message: a long linger would only add latency.
      {"linger.ms", "1"},
  };
  Result<Conf> conf = make_conf(options, settings);
  if (!conf) return conf.error();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), on_delivery);
  Result<Handle> rk = make_handle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk) return rk.error();
  return std::unique_ptr<Producer>(new Producer(std::move(*rk), options.message_timeout));
}

Producer::~Producer() {
  stopping_ = true;
  poller_.join();
  // Whatever is still queued fails now; serving the reports releases their publishers.
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush(rk_.get(), 2000);
}

void Producer::poll_loop() {
  while (!stopping_) rd_kafka_poll(rk_.get(), 100);
}

Status Producer::publish(const Message& message) {
  auto delivery = std::make_shared<Delivery>();
  std::vector<rd_kafka_vu_t> fields;
  fields.reserve(4 + message.headers.size());
  rd_kafka_vu_t topic = vu(RD_KAFKA_VTYPE_TOPIC);
  topic.u.cstr = message.topic.c_str();
  fields.push_back(topic);
  if (!message.key.empty()) {  // an empty key is Kafka's null key
    rd_kafka_vu_t key = vu(RD_KAFKA_VTYPE_KEY);
    key.u.mem.ptr = const_cast<char*>(message.key.data());
    key.u.mem.size = message.key.size();
    fields.push_back(key);
  }
  rd_kafka_vu_t value = vu(RD_KAFKA_VTYPE_VALUE);
  value.u.mem.ptr = const_cast<char*>(message.body.data());
  value.u.mem.size = message.body.size();
  fields.push_back(value);
  for (const auto& [name, header_value] : message.headers) {
    rd_kafka_vu_t header = vu(RD_KAFKA_VTYPE_HEADER);  // copied by librdkafka
    header.u.header.name = name.c_str();
    header.u.header.val = header_value.data();
    header.u.header.size = static_cast<ssize_t>(header_value.size());
    fields.push_back(header);
  }
  rd_kafka_vu_t flags = vu(RD_KAFKA_VTYPE_MSGFLAGS);
  flags.u.i = RD_KAFKA_MSG_F_COPY;
  fields.push_back(flags);
  rd_kafka_vu_t opaque = vu(RD_KAFKA_VTYPE_OPAQUE);
  fields.push_back(opaque);

  const auto deadline = std::chrono::steady_clock::now() + message_timeout_;
  for (;;) {
    auto* ref = new DeliveryRef(delivery);
    fields.back().u.ptr = ref;
    ErrorHandle error(rd_kafka_produceva(rk_.get(), fields.data(), fields.size()));
    if (!error) break;
    delete ref;  // not queued: no report will come
    if (rd_kafka_error_code(error.get()) == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
        std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
      continue;
    }
    return to_error(error.get(), "kafka: cannot send to topic " + message.topic);
  }

  // librdkafka reports every message about a second after message.timeout.ms at the latest; the
  // margin only guards against a report that never comes (the message may then still arrive: the
  // publisher will publish it again, and consumers are idempotent).
  std::unique_lock lock(delivery->mutex);
  if (!delivery->reported.wait_for(lock, message_timeout_ + kReportMargin,
                                   [&] { return delivery->done; })) {
    return make_error(ErrorKind::kUnavailable,
                      "kafka: no delivery report for topic " + message.topic);
  }
  if (delivery->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return to_error(delivery->err, "kafka: topic " + message.topic + " did not take the message");
  }
  return {};
}

void Producer::flush(std::chrono::milliseconds timeout) {
  // The poll thread serves the reports; this only waits for them.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (rd_kafka_outq_len(rk_.get()) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  if (const int left = rd_kafka_outq_len(rk_.get()); left > 0) {
    spdlog::warn("kafka: {} messages still unacknowledged after {} ms", left, timeout.count());
  }
}

Status Producer::create_topics(const std::vector<std::string>& names, int partitions,
                               int replication, std::chrono::milliseconds timeout) {
  if (names.empty()) return {};
  std::array<char, 512> errstr{};
  std::vector<rd_kafka_NewTopic_t*> topics;
  struct Cleanup {
    std::vector<rd_kafka_NewTopic_t*>& topics;
    ~Cleanup() { rd_kafka_NewTopic_destroy_array(topics.data(), topics.size()); }
  } cleanup{topics};
  for (const std::string& name : names) {
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(name.c_str(), partitions, replication, errstr.data(), errstr.size());
    if (topic == nullptr) {
      return make_error(ErrorKind::kInvalidArgument, "kafka topic " + name + ": " + errstr.data());
    }
    topics.push_back(topic);
  }

  std::unique_ptr<rd_kafka_AdminOptions_t,
                  Deleter<rd_kafka_AdminOptions_t, rd_kafka_AdminOptions_destroy>>
      options(rd_kafka_AdminOptions_new(rk_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  const int ms = static_cast<int>(timeout.count());
  // The broker answers once the topics exist, so they can be used at once.
  if (rd_kafka_AdminOptions_set_request_timeout(options.get(), ms, errstr.data(), errstr.size()) ||
      rd_kafka_AdminOptions_set_operation_timeout(options.get(), ms, errstr.data(),
                                                  errstr.size())) {
    return make_error(ErrorKind::kInvalidArgument, std::string("kafka: ") + errstr.data());
  }
  Queue queue(rd_kafka_queue_new(rk_.get()));
  rd_kafka_CreateTopics(rk_.get(), topics.data(), topics.size(), options.get(), queue.get());
  Event event(rd_kafka_queue_poll(queue.get(), ms + 2000));
  if (!event) return make_error(ErrorKind::kUnavailable, "kafka: no answer to creating topics");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return to_error(rd_kafka_event_error(event.get()),
                    std::string("kafka: cannot create topics (") +
                        rd_kafka_event_error_string(event.get()) + ")");
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      continue;
    }
    const char* detail = rd_kafka_topic_result_error_string(results[i]);
    return to_error(err, std::string("kafka: cannot create topic ") +
                             rd_kafka_topic_result_name(results[i]) + " (" +
                             (detail != nullptr ? detail : "") + ")");
  }
  return {};
}

Status Producer::ping(std::chrono::milliseconds timeout) {
  // An idempotent producer that hit a fatal error (e.g. its sequence numbers were lost) refuses
  // every publish from then on: only a restart mends it, so readiness must say so.
  char reason[512];
  if (const rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk_.get(), reason, sizeof reason);
      fatal != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(ErrorKind::kUnavailable,
                      std::string("kafka: the producer failed for good: ") + reason);
  }
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_.get(), 0, nullptr, &metadata, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return to_error(err, "kafka: no metadata from a broker");
  rd_kafka_metadata_destroy(metadata);
  return {};
}

}  // namespace dither::kafka
