// The URL fetcher's safety (issue 13, item 6): the address check as a pure function over every
// refused range, and the fetcher over the network with servers on 127.0.0.x only. No test sends a
// packet to any address outside 127.0.0.0/8, not even one expected to be refused: those addresses
// are judged by fetch_address_allowed alone.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http_fetch/curl_url_fetcher.h"

namespace dither {
namespace {

// ---- the address check ------------------------------------------------------------------------

TEST(FetchAddressCheck, RefusesEveryNonPublicIpv4Range) {
  for (const char* ip : {
           "0.0.0.0",        "0.1.2.3",         "0.255.255.255",    // 0.0.0.0/8
           "10.0.0.0",       "10.1.2.3",        "10.255.255.255",   // 10/8
           "100.64.0.0",     "100.100.100.200", "100.127.255.255",  // 100.64/10 CGNAT
           "169.254.0.1",    "169.254.169.254", "169.254.255.255",  // link-local, metadata
           "172.16.0.0",     "172.20.1.1",      "172.31.255.255",   // 172.16/12
           "192.168.0.0",    "192.168.1.1",     "192.168.255.255",  // 192.168/16
           "192.0.0.1",      "192.0.2.1",       "198.18.0.1",       // IETF, documentation,
           "198.19.255.255", "198.51.100.7",    "203.0.113.9",      // benchmarking
           "224.0.0.1",      "239.255.255.250", "233.1.2.3",        // multicast
           "240.0.0.1",      "255.255.255.255",                     // reserved, broadcast
       }) {
    EXPECT_FALSE(fetch_address_allowed(ip, false)) << ip;
    EXPECT_FALSE(fetch_address_allowed(ip, true)) << ip << " (loopback allowed)";
  }
}

TEST(FetchAddressCheck, LoopbackOnlyWhenAllowed) {
  for (const char* ip : {"127.0.0.1", "127.0.0.2", "127.1.2.3", "127.255.255.255", "::1", "[::1]",
                         "::ffff:127.0.0.1", "::ffff:7f00:1"}) {
    EXPECT_FALSE(fetch_address_allowed(ip, false)) << ip;
    EXPECT_TRUE(fetch_address_allowed(ip, true)) << ip;
  }
}

TEST(FetchAddressCheck, RefusesEveryNonPublicIpv6Range) {
  for (const char* ip : {
           "::",  // unspecified
           "::2",
           "::10.0.0.1",  // IPv4-compatible (deprecated), whatever is inside
           "::8.8.8.8",   //
           "fe80::1",
           "fe80::1:2:3:4",
           "febf:ffff::1",  // fe80::/10 link-local
           "fec0::1",       // site-local (deprecated)
           "fc00::1",
           "fd00::1",
           "fd12:3456:789a::1",  // fc00::/7 unique-local
           "fd00:ec2::254",      // AWS metadata over IPv6
           "ff02::1",
           "ff05::2",
           "ff0e::1",           // multicast
           "100::1",            // discard-only
           "64:ff9b:1::a00:1",  // local-use NAT64
           "2001::1",
           "2001:0:4136:e378:8000:63bf:3fff:fdd2",  // Teredo
           "2001:db8::1",
           "3fff::1",    // documentation
           "2001:2::1",  // benchmarking
       }) {
    EXPECT_FALSE(fetch_address_allowed(ip, false)) << ip;
    EXPECT_FALSE(fetch_address_allowed(ip, true)) << ip << " (loopback allowed)";
  }
}

TEST(FetchAddressCheck, Ipv4InsideIpv6IsJudgedAsThatIpv4) {
  // IPv4-mapped ::ffff:a.b.c.d, in both spellings.
  for (const char* ip : {"::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:192.168.1.1",
                         "::ffff:172.16.0.1", "::ffff:0.0.0.0", "::ffff:100.64.0.1",
                         "::ffff:a9fe:a9fe", "::ffff:224.0.0.1", "::ffff:255.255.255.255"}) {
    EXPECT_FALSE(fetch_address_allowed(ip, false)) << ip;
    EXPECT_FALSE(fetch_address_allowed(ip, true)) << ip;
  }
  EXPECT_TRUE(fetch_address_allowed("::ffff:8.8.8.8", false));
  EXPECT_TRUE(fetch_address_allowed("::ffff:93.184.216.34", false));
  // NAT64 64:ff9b::/96: the IPv4 inside decides, and it is never this host's loopback.
  for (const char* ip : {"64:ff9b::10.0.0.1", "64:ff9b::169.254.169.254", "64:ff9b::192.168.0.1",
                         "64:ff9b::a9fe:a9fe", "64:ff9b::0.0.0.0"}) {
    EXPECT_FALSE(fetch_address_allowed(ip, false)) << ip;
    EXPECT_FALSE(fetch_address_allowed(ip, true)) << ip;
  }
  EXPECT_FALSE(fetch_address_allowed("64:ff9b::127.0.0.1", true));
  EXPECT_TRUE(fetch_address_allowed("64:ff9b::8.8.8.8", false));
  // 6to4 2002:AABB:CCDD::/48: the IPv4 in bits 16-47 decides.
  EXPECT_FALSE(fetch_address_allowed("2002:a00:1::1", false));     // 10.0.0.1
  EXPECT_FALSE(fetch_address_allowed("2002:a9fe:a9fe::", false));  // 169.254.169.254
  EXPECT_FALSE(fetch_address_allowed("2002:7f00:1::1", true));     // 127.0.0.1
  EXPECT_TRUE(fetch_address_allowed("2002:808:808::1", false));    // 8.8.8.8
}

TEST(FetchAddressCheck, AllowsPublicAddresses) {
  for (const char* ip : {"8.8.8.8",
                         "1.1.1.1",
                         "93.184.216.34",
                         "9.255.255.255",
                         "11.0.0.0",
                         "100.63.255.255",
                         "100.128.0.0",
                         "126.255.255.255",
                         "128.0.0.0",
                         "169.253.255.255",
                         "169.255.0.0",
                         "172.15.255.255",
                         "172.32.0.0",
                         "192.167.255.255",
                         "192.169.0.0",
                         "198.17.255.255",
                         "198.20.0.0",
                         "223.255.255.255",
                         "2606:4700:4700::1111",
                         "2001:4860:4860::8888",
                         "2a00:1450:4001:80b::200e",
                         "[2a03:2880::1]"}) {
    EXPECT_TRUE(fetch_address_allowed(ip, false)) << ip;
    EXPECT_TRUE(fetch_address_allowed(ip, true)) << ip;
  }
}

TEST(FetchAddressCheck, WhatIsNotAnAddressIsRefused) {
  for (const char* text : {"", "localhost", "example.com", "1.2.3", "127.1", "0x7f.0.0.1",
                           "8.8.8.8.8", "::g", "[::1"}) {
    EXPECT_FALSE(fetch_address_allowed(text, true)) << text;
  }
  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  EXPECT_FALSE(fetch_address_allowed(reinterpret_cast<const sockaddr*>(&unix_address),
                                     sizeof unix_address, true));
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(0x08080808);
  EXPECT_TRUE(fetch_address_allowed(reinterpret_cast<const sockaddr*>(&in), sizeof in, false));
  EXPECT_FALSE(fetch_address_allowed(reinterpret_cast<const sockaddr*>(&in), 4, false))
      << "a truncated address";
  EXPECT_FALSE(fetch_address_allowed(nullptr, 0, true));
}

TEST(FetchHostList, ExactAndCaseInsensitive) {
  const std::vector<std::string> allowed{"images.example.org", "CDN.Example.NET", "[2001:db8::1]",
                                         "192.0.2.10"};
  EXPECT_TRUE(fetch_host_allowed("images.example.org", allowed));
  EXPECT_TRUE(fetch_host_allowed("IMAGES.Example.ORG", allowed));
  EXPECT_TRUE(fetch_host_allowed("cdn.example.net", allowed));
  EXPECT_TRUE(fetch_host_allowed("[2001:db8::1]", allowed));
  EXPECT_TRUE(fetch_host_allowed("2001:db8::1", allowed));
  EXPECT_TRUE(fetch_host_allowed("192.0.2.10", allowed));
  for (const char* host :
       {"", "example.org", "x.images.example.org", "images.example.org.", "images.example.or",
        "images.example.org.evil.test", "192.0.2.1", "[]", "evil.test"}) {
    EXPECT_FALSE(fetch_host_allowed(host, allowed)) << host;
  }
  EXPECT_FALSE(fetch_host_allowed("images.example.org", {}));
}

// ---- over the network, 127.0.0.x only ---------------------------------------------------------

std::string ok_response(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

std::string redirect_response(const std::string& location, int status = 302) {
  return "HTTP/1.1 " + std::to_string(status) + " Moved\r\nLocation: " + location +
         "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

// A one-connection-at-a-time HTTP server on a loopback address that counts the connections it
// accepts and answers each request with what `respond` makes of its request line.
class TinyServer {
 public:
  using Respond = std::function<std::string(const std::string& request_line)>;

  TinyServer(const char* ip, Respond respond) : respond_(std::move(respond)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &address.sin_addr) != 1 ||
        (ntohl(address.sin_addr.s_addr) >> 24) != 127) {
      throw std::runtime_error("loopback addresses only");
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd_, 16) != 0) {
      ::close(fd_);
      throw std::runtime_error(std::string("cannot listen on ") + ip);
    }
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  TinyServer(const char* ip, std::string response)
      : TinyServer(ip, [response](const std::string&) { return response; }) {}
  ~TinyServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  TinyServer(const TinyServer&) = delete;
  TinyServer& operator=(const TinyServer&) = delete;

  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::vector<std::string> request_lines() {
    const std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      ++connections_;
      timeval timeout{5, 0};
      ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
        const ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      const std::string line = request.substr(0, request.find("\r\n"));
      {
        const std::lock_guard lock(mutex_);
        lines_.push_back(line);
      }
      const std::string response = respond_(line);
      size_t sent = 0;
      while (sent < response.size()) {
        const ssize_t n =
            ::send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      ::shutdown(client, SHUT_WR);
      ::close(client);
    }
  }

  Respond respond_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::vector<std::string> lines_;
  std::thread thread_;
};

std::string as_text(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

std::string url(const char* host, uint16_t port, const char* path = "/p.png") {
  return "http://" + std::string(host) + ":" + std::to_string(port) + path;
}

// A policy for these tests: quick time-outs, `hosts` allowed.
FetchPolicy policy(std::vector<std::string> hosts, bool allow_loopback) {
  FetchPolicy p;
  p.allowed_hosts = std::move(hosts);
  p.allow_loopback = allow_loopback;
  p.timeout = std::chrono::seconds{10};
  p.connect_timeout = std::chrono::seconds{2};
  return p;
}

constexpr uint64_t kMax = 1 << 20;

TEST(CurlUrlFetcher, FetchesFromAnAllowedHostWhenLoopbackIsAllowed) {
  TinyServer server("127.0.0.1", ok_response("the image"));
  FetchPolicy p = policy({"localhost", "127.0.0.1"}, true);
  // "localhost" pinned to 127.0.0.1 (never ::1: these tests stay on 127.0.0.0/8).
  p.resolve = {"localhost:" + std::to_string(server.port()) + ":127.0.0.1"};
  CurlUrlFetcher fetcher(p);
  Result<std::vector<uint8_t>> got = fetcher.fetch(url("LocalHost", server.port()), kMax);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(as_text(*got), "the image");
  got = fetcher.fetch(url("127.0.0.1", server.port()), kMax);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(server.connections(), 2);
}

TEST(CurlUrlFetcher, AnEmptyListMeansFetchingIsOff) {
  TinyServer server("127.0.0.1", ok_response("the image"));
  CurlUrlFetcher fetcher(policy({}, true));
  Result<std::vector<uint8_t>> got = fetcher.fetch(url("127.0.0.1", server.port()), kMax);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(got.error().message.find("off"), std::string::npos) << got.error().message;
  EXPECT_EQ(server.connections(), 0);
}

TEST(CurlUrlFetcher, AHostNotOnTheListIsRefusedWithoutAConnection) {
  TinyServer server("127.0.0.1", ok_response("the image"));
  FetchPolicy p = policy({"images.example.test"}, true);
  p.resolve = {"localhost:" + std::to_string(server.port()) + ":127.0.0.1",
               "other.example.test:" + std::to_string(server.port()) + ":127.0.0.1"};
  CurlUrlFetcher fetcher(p);
  for (const char* host :
       {"127.0.0.1", "localhost", "other.example.test", "IMAGES.example.test.x"}) {
    Result<std::vector<uint8_t>> got = fetcher.fetch(url(host, server.port()), kMax);
    ASSERT_FALSE(got.ok()) << host;
    EXPECT_EQ(got.error().kind, ErrorKind::kUnsupported) << got.error().message;
    EXPECT_NE(got.error().message.find("not in FETCH_ALLOWED_HOSTS"), std::string::npos)
        << got.error().message;
  }
  EXPECT_EQ(server.connections(), 0);
}

TEST(CurlUrlFetcher, ANamePinnedToLoopbackIsRefusedWhenLoopbackIsNotAllowed) {
  TinyServer server("127.0.0.1", ok_response("the image"));
  const std::string port = std::to_string(server.port());
  FetchPolicy p = policy({"localhost", "pinned.example.test", "127.0.0.1"}, false);
  p.resolve = {"localhost:" + port + ":127.0.0.1", "pinned.example.test:" + port + ":127.0.0.1"};
  CurlUrlFetcher fetcher(p);
  for (const char* host : {"localhost", "pinned.example.test", "127.0.0.1"}) {
    Result<std::vector<uint8_t>> got = fetcher.fetch(url(host, server.port()), kMax);
    ASSERT_FALSE(got.ok()) << host;
    EXPECT_EQ(got.error().kind, ErrorKind::kUnsupported) << got.error().message;
    EXPECT_NE(got.error().message.find("refused address (127.0.0.1)"), std::string::npos)
        << got.error().message;
  }
  EXPECT_EQ(server.connections(), 0) << "the refused address got no connection";
}

TEST(CurlUrlFetcher, ARedirectToAHostNotOnTheListIsNeverFollowed) {
  TinyServer inner("127.0.0.2", ok_response("must never be read"));  // server B
  const std::string inner_port = std::to_string(inner.port());
  TinyServer outer("127.0.0.1", [&](const std::string& line) {  // server A
    if (line.find("/by-address") != std::string::npos) {
      return redirect_response("http://127.0.0.2:" + inner_port + "/");
    }
    return redirect_response("http://inner.example.test:" + inner_port + "/", 307);
  });
  FetchPolicy p = policy({"outer.example.test"}, true);
  p.resolve = {"outer.example.test:" + std::to_string(outer.port()) + ":127.0.0.1",
               "inner.example.test:" + inner_port + ":127.0.0.2"};
  CurlUrlFetcher fetcher(p);
  for (const char* path : {"/by-address", "/by-name"}) {
    Result<std::vector<uint8_t>> got =
        fetcher.fetch(url("outer.example.test", outer.port(), path), kMax);
    ASSERT_FALSE(got.ok()) << path;
    EXPECT_EQ(got.error().kind, ErrorKind::kUnsupported) << got.error().message;
    EXPECT_NE(got.error().message.find("not in FETCH_ALLOWED_HOSTS"), std::string::npos)
        << got.error().message;
  }
  EXPECT_EQ(outer.connections(), 2);
  EXPECT_EQ(inner.connections(), 0) << "the redirect's target was reached";
}

TEST(CurlUrlFetcher, ARedirectsTargetIsCheckedAtConnectTimeToo) {
  // Both hosts are allowed; the check refuses the second one's address (127.0.0.2), as the real
  // check refuses a private address that an allowed name points at after a redirect.
  TinyServer inner("127.0.0.2", ok_response("must never be read"));
  const std::string inner_port = std::to_string(inner.port());
  TinyServer outer("127.0.0.1",
                   redirect_response("http://inner.example.test:" + inner_port + "/x.png"));
  FetchPolicy p = policy({"outer.example.test", "inner.example.test"}, true);
  p.resolve = {"outer.example.test:" + std::to_string(outer.port()) + ":127.0.0.1",
               "inner.example.test:" + inner_port + ":127.0.0.2"};
  std::atomic<int> checked{0};
  p.address_check = [&checked](const sockaddr* address, socklen_t length) {
    ++checked;
    if (address->sa_family != AF_INET || length < static_cast<socklen_t>(sizeof(sockaddr_in))) {
      return false;
    }
    return reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
  };
  CurlUrlFetcher fetcher(p);
  Result<std::vector<uint8_t>> got = fetcher.fetch(url("outer.example.test", outer.port()), kMax);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kUnsupported) << got.error().message;
  EXPECT_NE(got.error().message.find("refused address (127.0.0.2)"), std::string::npos)
      << got.error().message;
  EXPECT_EQ(outer.connections(), 1);
  EXPECT_EQ(inner.connections(), 0);
  EXPECT_GE(checked.load(), 2);
}

TEST(CurlUrlFetcher, AtMostThreeRedirects) {
  // /hops/N redirects to /hops/N-1 (relative Location); /hops/0 is the file.
  TinyServer server("127.0.0.1", [](const std::string& line) {
    const size_t at = line.find("/hops/");
    const int n = at == std::string::npos ? 0 : line[at + 6] - '0';
    if (n <= 0) return ok_response("the image");
    return redirect_response("/hops/" + std::to_string(n - 1), n % 2 == 0 ? 301 : 308);
  });
  CurlUrlFetcher fetcher(policy({"127.0.0.1"}, true));
  Result<std::vector<uint8_t>> got =
      fetcher.fetch(url("127.0.0.1", server.port(), "/hops/3"), kMax);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(as_text(*got), "the image");
  EXPECT_EQ(server.connections(), 4);
  got = fetcher.fetch(url("127.0.0.1", server.port(), "/hops/4"), kMax);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(got.error().message.find("more than 3 redirects"), std::string::npos)
      << got.error().message;
  EXPECT_EQ(server.connections(), 8) << "the fourth redirect is not followed";
}

TEST(CurlUrlFetcher, OnlyHttpAndHttps) {
  TinyServer server("127.0.0.1", redirect_response("file:///etc/passwd"));
  CurlUrlFetcher fetcher(policy({"127.0.0.1", "localhost"}, true));
  for (const std::string& target :
       {std::string("file:///etc/passwd"), std::string("ftp://127.0.0.1/x"),
        std::string("gopher://127.0.0.1/x"), std::string("dict://localhost:1/x"),
        std::string("not a url")}) {
    Result<std::vector<uint8_t>> got = fetcher.fetch(target, kMax);
    ASSERT_FALSE(got.ok()) << target;
    EXPECT_EQ(got.error().kind, ErrorKind::kInvalidArgument) << got.error().message;
  }
  Result<std::vector<uint8_t>> got = fetcher.fetch(url("127.0.0.1", server.port()), kMax);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kInvalidArgument) << got.error().message;
  EXPECT_NE(got.error().message.find("not an http(s) URL"), std::string::npos)
      << got.error().message;
}

// Sets proxy variables for one scope.
class ProxyEnvironment {
 public:
  explicit ProxyEnvironment(const std::string& proxy) {
    for (const char* name : kNames) ::setenv(name, proxy.c_str(), 1);
  }
  ~ProxyEnvironment() {
    for (const char* name : kNames) ::unsetenv(name);
  }

 private:
  static constexpr const char* kNames[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                           "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
};

TEST(CurlUrlFetcher, TheEnvironmentsProxyIsIgnored) {
  TinyServer server("127.0.0.1", ok_response("the image"));
  TinyServer proxy("127.0.0.1", ok_response("from the proxy"));
  const ProxyEnvironment environment("http://127.0.0.1:" + std::to_string(proxy.port()));
  CurlUrlFetcher fetcher(policy({"127.0.0.1"}, true));
  Result<std::vector<uint8_t>> got = fetcher.fetch(url("127.0.0.1", server.port()), kMax);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(as_text(*got), "the image");
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(proxy.connections(), 0);
}

// A port on 127.0.0.1 where nothing listens (bound, then closed).
uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

TEST(CurlUrlFetcher, AnUnreachableUrlIsGivenUpAfterBoundedAttempts) {
  FetchPolicy p = policy({"127.0.0.1"}, true);
  p.max_attempts = 3;
  CurlUrlFetcher fetcher(p);
  const std::string target = url("127.0.0.1", closed_port());
  for (int attempt = 1; attempt < 3; ++attempt) {
    Result<std::vector<uint8_t>> got = fetcher.fetch(target, kMax);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().kind, ErrorKind::kUnavailable) << got.error().message;
  }
  Result<std::vector<uint8_t>> got = fetcher.fetch(target, kMax);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().kind, ErrorKind::kUnavailable) << "the last attempt is final";
  EXPECT_NE(got.error().message.find("given up after 3 attempts"), std::string::npos)
      << got.error().message;

  // A server that answers 503 is retried the same way, and may succeed within the bound.
  std::atomic<int> failing{2};
  TinyServer flaky("127.0.0.1", [&failing](const std::string&) {
    if (failing-- > 0) {
      return std::string("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    return ok_response("the image");
  });
  const std::string flaky_url = url("127.0.0.1", flaky.port());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    got = fetcher.fetch(flaky_url, kMax);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().kind, ErrorKind::kUnavailable) << got.error().message;
  }
  got = fetcher.fetch(flaky_url, kMax);
  EXPECT_TRUE(got.ok()) << "the third attempt of a URL that failed twice is still made";
}

TEST(CurlUrlFetcher, ErrorsNeverCarryTheQueryOfASignedLink) {
  TinyServer server("127.0.0.1",
                    std::string("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: "
                                "close\r\n\r\n"));
  CurlUrlFetcher fetcher(policy({"127.0.0.1"}, true));
  Result<std::vector<uint8_t>> got = fetcher.fetch(
      "http://user:pw@127.0.0.1:" + std::to_string(server.port()) + "/f.png?sig=SECRETSIG#frag",
      kMax);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(got.error().message.find("SECRETSIG"), std::string::npos) << got.error().message;
  EXPECT_EQ(got.error().message.find("pw@"), std::string::npos) << got.error().message;
  EXPECT_NE(got.error().message.find("/f.png"), std::string::npos) << got.error().message;
}

TEST(CurlUrlFetcher, ABodyPastTheLimitIsTooLarge) {
  TinyServer server("127.0.0.1", ok_response(std::string(5000, 'x')));
  CurlUrlFetcher fetcher(policy({"127.0.0.1"}, true));
  Result<std::vector<uint8_t>> got = fetcher.fetch(url("127.0.0.1", server.port()), 1000);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kTooLarge);
}

}  // namespace
}  // namespace dither
