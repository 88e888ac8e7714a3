#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "auth/api_keys.h"
#include "auth/link_signer.h"
#include "auth/secrets.h"
#include "common/crypto.h"
#include "common/utf8.h"

namespace dither {
namespace {

TEST(Crypto, Base64urlRoundTripsEveryLength) {
  for (size_t n = 0; n < 70; ++n) {
    const std::string bytes = random_bytes(n);
    const std::string text = base64url(bytes);
    EXPECT_EQ(text.find_first_of("+/="), std::string::npos);
    EXPECT_EQ(from_base64url(text), bytes) << n;
  }
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
  EXPECT_FALSE(from_base64url("a"));     // no length 4k+1
  EXPECT_FALSE(from_base64url("ab+c"));  // not the URL alphabet
  EXPECT_FALSE(from_base64url("-_9"));   // non-zero leftover bits: a second encoding
}

TEST(Crypto, HmacSha256KnownAnswer) {
  // RFC 4231, test case 2.
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(to_hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HmacSha256KeyedOnceKnownAnswers) {
  // RFC 4231, test cases 1, 2 and 6 (a key longer than a block is hashed first).
  EXPECT_EQ(to_hex(HmacSha256(std::string(20, '\x0b'))("Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(to_hex(HmacSha256("Jefe")("what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(to_hex(HmacSha256(std::string(131, '\xaa'))(
                "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

// OpenSSL's one-shot HMAC() is the oracle, over key and message lengths around the block size.
TEST(Crypto, HmacSha256KeyedOnceMatchesOpenSsl) {
  for (size_t key_length : {0, 1, 31, 32, 63, 64, 65, 127, 128, 200}) {
    const std::string key = random_bytes(key_length);
    const HmacSha256 mac(key);
    for (size_t n = 0; n < 300; n += 7) {
      const std::string data = random_bytes(n);
      unsigned char expected[EVP_MAX_MD_SIZE];
      unsigned int size = 0;
      ASSERT_NE(
          HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(data.data()), data.size(), expected, &size),
          nullptr);
      const std::string want(reinterpret_cast<const char*>(expected), size);
      EXPECT_EQ(mac(data), want) << key_length << " " << n;
      EXPECT_EQ(hmac_sha256(key, data), want) << key_length << " " << n;
    }
  }
  EXPECT_EQ(HmacSha256()("x"), hmac_sha256("", "x"));
}

TEST(Crypto, HmacSha256KeyedOnceIsSharedAcrossThreads) {
  const HmacSha256 mac(random_bytes(32));
  const HmacSha256 copy = mac;
  std::vector<std::string> expected;
  for (int i = 0; i < 64; ++i) expected.push_back(hmac_sha256("", std::to_string(i)));
  const HmacSha256 empty;
  std::vector<std::jthread> threads;
  std::atomic<int> wrong = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        for (int i = 0; i < 64; ++i) {
          if (empty(std::to_string(i)) != expected[static_cast<size_t>(i)]) ++wrong;
          if (copy(std::to_string(i)) != mac(std::to_string(i))) ++wrong;
        }
      }
    });
  }
  threads.clear();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Crypto, RandomTokensDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(random_token(32));
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(random_token(32).size(), 43u);
}

TEST(Crypto, ConstantTimeEqualIsExact) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("abc", "ABC"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Utf8, CodePointsCountCharactersNotBytes) {
  EXPECT_EQ(code_points(""), 0u);
  EXPECT_EQ(code_points("abc"), 3u);
  EXPECT_EQ(code_points("caf\xC3\xA9"), 4u);                   // e-acute: 2 bytes
  EXPECT_EQ(code_points("\xE2\x9C\x93\xF0\x9F\x98\x80"), 2u);  // 3 and 4 bytes
}

TEST(ApiKeys, MadeParsedAndHashed) {
  Result<NewApiKey> k = make_api_key("", "laptop", false, "pepper-pepper-pepper-pepper-pepper");
  ASSERT_TRUE(k);
  EXPECT_TRUE(k->key.starts_with("dk_" + k->record.id + "_"));
  EXPECT_EQ(k->key.size(), 3u + 12 + 1 + 43);
  EXPECT_EQ(k->record.owner, "key:" + k->record.id);
  EXPECT_EQ(api_key_id(k->key), k->record.id);
  EXPECT_EQ(k->record.hash, api_key_hash("pepper-pepper-pepper-pepper-pepper", k->key));
  EXPECT_NE(k->record.hash, api_key_hash("another-pepper-another-pepper-xx", k->key));
  EXPECT_EQ(k->record.hash.find(k->key), std::string::npos);
  // Anything but the exact shape is no key.
  EXPECT_FALSE(api_key_id(k->key + " "));
  EXPECT_FALSE(api_key_id(" " + k->key));
  EXPECT_FALSE(api_key_id(k->key.substr(0, k->key.size() - 1)));
  std::string upper = k->key;
  upper[3] = 'K';
  EXPECT_FALSE(api_key_id(upper));
  std::string bad = k->key;
  bad.back() = '=';
  EXPECT_FALSE(api_key_id(bad));
  EXPECT_FALSE(api_key_id(""));
  EXPECT_FALSE(api_key_id("Bearer"));
}

TEST(ApiKeys, OwnersAndNamesAreChecked) {
  EXPECT_TRUE(make_api_key("alice", "n", true, "p"));
  EXPECT_EQ(make_api_key("alice", "n", true, "p")->record.owner, "alice");
  EXPECT_FALSE(make_api_key("al ice", "n", false, "p"));
  EXPECT_FALSE(make_api_key(std::string(65, 'a'), "n", false, "p"));
  EXPECT_FALSE(make_api_key("alice", "bad\nname", false, "p"));
  EXPECT_FALSE(make_api_key("alice", "del\x7f", false, "p"));
  EXPECT_FALSE(make_api_key("alice", std::string(101, 'n'), false, "p"));
  EXPECT_TRUE(make_api_key("alice", std::string(100, 'n'), false, "p"));
  // A name is 1 to 100 characters as OpenAPI's maxLength counts them (code points, not bytes),
  // and valid UTF-8 (Schemathesis found 100 bytes refused where the document allowed them).
  EXPECT_FALSE(make_api_key("alice", "", false, "p"));
  std::string e_acute;
  for (int i = 0; i < 100; ++i) e_acute += "\xC3\xA9";  // 100 x U+00E9, 200 bytes
  EXPECT_TRUE(make_api_key("alice", e_acute, false, "p"));
  EXPECT_FALSE(make_api_key("alice", e_acute + "\xC3\xA9", false, "p"));
  EXPECT_TRUE(make_api_key("alice", "\xF0\x9F\x94\x91 key", false, "p"));  // U+1F511
  EXPECT_FALSE(make_api_key("alice", "bad \xC3", false, "p"));
  EXPECT_FALSE(make_api_key("alice", "bad \xFF", false, "p"));
}

TEST(LinkSigner, SignsOnlyItsOwnFiles) {
  LinkSigner signer({"k1-0123456789abcdef0123456789abcdef"}, "http://h:1/files/");
  const std::string url = signer.sign("http://h:1/files/originals/a.png", 2000);
  EXPECT_TRUE(url.starts_with("http://h:1/files/originals/a.png?expires=2000&sig="));
  EXPECT_EQ(signer.sign("https://cdn.example/a.png", 2000), "https://cdn.example/a.png");
  EXPECT_EQ(signer.sign("", 2000), "");
}

TEST(LinkSigner, VerdictsForEveryTampering) {
  LinkSigner signer({"k1-0123456789abcdef0123456789abcdef"}, "http://h:1/files/");
  const std::string query = signer.query_for("originals/a.png", 2000);
  const std::string sig = query.substr(query.find("sig=") + 4);
  using V = LinkSigner::Verdict;
  EXPECT_EQ(signer.verify("originals/a.png", "2000", sig, 1000), V::kValid);
  EXPECT_EQ(signer.verify("originals/b.png", "2000", sig, 1000), V::kInvalid);
  EXPECT_EQ(signer.verify("originals/a.png", "2001", sig, 1000), V::kInvalid);
  EXPECT_EQ(signer.verify("originals/a.png", "02000", sig, 1000), V::kInvalid);
  std::string flipped = sig;
  flipped[0] = flipped[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(signer.verify("originals/a.png", "2000", flipped, 1000), V::kInvalid);
  EXPECT_EQ(signer.verify("originals/a.png", "2000", sig, 2000), V::kExpired);
  EXPECT_EQ(signer.verify("originals/a.png", std::nullopt, std::nullopt, 1000), V::kUnsigned);
  EXPECT_EQ(signer.verify("originals/a.png", "2000", std::nullopt, 1000), V::kInvalid);
  EXPECT_EQ(signer.verify("originals/a.png", "x", sig, 1000), V::kInvalid);
}

TEST(LinkSigner, RotationAcceptsListedKeysOnly) {
  LinkSigner old_signer({"old-0123456789abcdef0123456789abcdef"}, "http://h/files/");
  LinkSigner both({"new-0123456789abcdef0123456789abcdef", "old-0123456789abcdef0123456789abcdef"},
                  "http://h/files/");
  LinkSigner new_only({"new-0123456789abcdef0123456789abcdef"}, "http://h/files/");
  const std::string query = old_signer.query_for("k", 5000);
  const std::string sig = query.substr(query.find("sig=") + 4);
  EXPECT_EQ(both.verify("k", "5000", sig, 1), LinkSigner::Verdict::kValid);
  EXPECT_EQ(new_only.verify("k", "5000", sig, 1), LinkSigner::Verdict::kInvalid);
}

TEST(LinkSigner, AnswerExpiryIsStableWithinAWindow) {
  EXPECT_EQ(answer_expiry(3600, 3600), 3 * 3600);
  EXPECT_EQ(answer_expiry(7199, 3600), 3 * 3600);
  EXPECT_EQ(answer_expiry(7200, 3600), 4 * 3600);
  for (int64_t now : {0L, 1L, 3599L, 123456L}) {
    EXPECT_GE(answer_expiry(now, 3600) - now, 3600);
    EXPECT_LT(answer_expiry(now, 3600) - now, 7201);
  }
}

TEST(Secrets, GeneratedOnceThenReadAndPrivate) {
  const auto dir = std::filesystem::temp_directory_path() / ("secrets-" + random_hex(6));
  const auto file = dir / "secrets" / "one";
  Result<Secret> first = load_secret("", file);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first->generated);
  EXPECT_GE(first->value.size(), 43u);
  Result<Secret> second = load_secret("", file);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->value, first->value);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Result<Secret> configured = load_secret("from-the-environment", file);
  ASSERT_TRUE(configured);
  EXPECT_EQ(configured->value, "from-the-environment");
  EXPECT_FALSE(configured->generated);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dither
