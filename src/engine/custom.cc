// Custom kernels and matrices from JSON (custom.h, docs/CUSTOM.md).
//
// The engine has no JSON library (it depends on nothing but dither_common), and these values are
// tiny: a strict reader of RFC 8259 JSON builds a small tree, then the shapes are checked. Every
// refusal says which row, entry or field is wrong.
#include "engine/custom.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <utility>

namespace dither::engine {

namespace {

Error invalid(std::string message) {
  return make_error(ErrorKind::kInvalidArgument, std::move(message));
}

// A JSON value: numbers keep their value, arrays and objects their members, and everything keeps
// its source text for messages.
struct Json {
  enum class Kind { kNumber, kArray, kObject, kOther };  // kOther: strings, true, false, null
  Kind kind = Kind::kOther;
  double number = 0;
  std::string_view text;
  std::vector<Json> items;             // an array's members, or an object's values
  std::vector<std::string_view> keys;  // an object's keys as written, without quotes (one per item)
};

// Nesting deeper than any kernel or matrix needs is refused before the stack can suffer.
constexpr int kMaxDepth = 8;

class Reader {
 public:
  explicit Reader(std::string_view text) : s_(text) {}

  Result<Json> document() {
    Result<Json> v = value(0);
    if (!v) return v;
    skip_space();
    if (pos_ != s_.size()) return fail("unexpected text after the value");
    return v;
  }

 private:
  Error fail(std::string_view what) const {
    return invalid("not valid JSON: " + std::string(what) + " at byte " + std::to_string(pos_ + 1));
  }
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool digit() const { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
  void digits() {
    while (digit()) ++pos_;
  }

  Result<Json> value(int depth) {
    if (depth > kMaxDepth) return fail("nested too deep");
    skip_space();
    if (pos_ == s_.size()) return fail("a value is missing");
    const size_t start = pos_;
    Result<Json> v = [&]() -> Result<Json> {
      const char c = s_[pos_];
      if (c == '[') return array(depth);
      if (c == '{') return object(depth);
      if (c == '"') return string_value();
      if (c == '-' || (c >= '0' && c <= '9')) return number();
      for (std::string_view word : {"true", "false", "null"}) {
        if (s_.substr(pos_, word.size()) == word) {
          pos_ += word.size();
          return Json{};
        }
      }
      return fail("unexpected character");
    }();
    if (v) v->text = s_.substr(start, pos_ - start);
    return v;
  }

  Result<Json> number() {
    const size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (!digit()) return fail("a digit is missing");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      digits();
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digit()) return fail("a digit is missing");
      digits();
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit()) return fail("a digit is missing");
      digits();
    }
    Json v;
    v.kind = Json::Kind::kNumber;
    v.number = std::strtod(std::string(s_.substr(start, pos_ - start)).c_str(), nullptr);
    return v;
  }

  // The text between the quotes, escapes checked but kept.
  Result<std::string_view> string() {
    ++pos_;  // the opening quote
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c < 0x20) return fail("a control character in a string");
      if (c == '\\') {
        ++pos_;
        if (pos_ == s_.size()) break;
        if (s_[pos_] == 'u') {
          for (int i = 0; i < 4; ++i) {
            ++pos_;
            if (pos_ == s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[pos_]))) {
              return fail("a bad \\u escape");
            }
          }
        } else if (std::string_view("\"\\/bfnrt").find(s_[pos_]) == std::string_view::npos) {
          return fail("a bad escape");
        }
      }
      ++pos_;
    }
    if (pos_ == s_.size()) return fail("a string is not closed");
    ++pos_;
    return s_.substr(start, pos_ - 1 - start);
  }

  Result<Json> string_value() {
    Result<std::string_view> s = string();
    if (!s) return s.error();
    return Json{};
  }

  Result<Json> array(int depth) {
    ++pos_;
    Json v;
    v.kind = Json::Kind::kArray;
    if (eat(']')) return v;
    do {
      Result<Json> item = value(depth + 1);
      if (!item) return item;
      v.items.push_back(std::move(*item));
    } while (eat(','));
    if (!eat(']')) return fail("',' or ']' expected");
    return v;
  }

  Result<Json> object(int depth) {
    ++pos_;
    Json v;
    v.kind = Json::Kind::kObject;
    if (eat('}')) return v;
    do {
      skip_space();
      if (pos_ == s_.size() || s_[pos_] != '"') return fail("a field name expected");
      Result<std::string_view> key = string();
      if (!key) return key.error();
      if (!eat(':')) return fail("':' expected");
      Result<Json> item = value(depth + 1);
      if (!item) return item;
      v.keys.push_back(*key);
      v.items.push_back(std::move(*item));
    } while (eat(','));
    if (!eat('}')) return fail("',' or '}' expected");
    return v;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// A whole number in [lo, hi], or nothing. Any JSON spelling of it will do (7, 7.0, 7e0): a body
// sent through a JSON library may come back as 7.0.
std::optional<int> whole(const Json& v, int lo, int hi) {
  if (v.kind != Json::Kind::kNumber || std::trunc(v.number) != v.number || v.number < lo ||
      v.number > hi) {
    return std::nullopt;
  }
  return static_cast<int>(v.number);
}

// A value as a message shows it: a number in its shortest form (a JSON library may have written
// 0.5 as 5E-1), anything else as written.
std::string shown(const Json& v) {
  if (v.kind != Json::Kind::kNumber) return std::string(v.text.substr(0, 40));
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v.number);
  return ec == std::errc{} ? std::string(buffer, end) : std::string(v.text);
}

Status check_size(std::string_view json, size_t limit) {
  if (json.size() > limit) {
    return invalid("the text is " + std::to_string(json.size()) + " bytes; at most " +
                   std::to_string(limit));
  }
  return {};
}

std::string entries(int n) { return std::to_string(n) + (n == 1 ? " entry" : " entries"); }

struct Grid {
  int width = 0;
  int height = 0;
  std::vector<int> values;
};

// Rows of whole numbers 0..max_value, all of one length.
Result<Grid> read_rows(const Json& v, int max_value, int max_rows, int max_entries) {
  if (v.kind != Json::Kind::kArray) return invalid("not a JSON array of rows");
  if (v.items.empty()) return invalid("no rows: give at least one row of one entry");
  if (static_cast<int>(v.items.size()) > max_rows) {
    return invalid(std::to_string(v.items.size()) + " rows; at most " + std::to_string(max_rows));
  }
  Grid g;
  g.height = static_cast<int>(v.items.size());
  for (size_t r = 0; r < v.items.size(); ++r) {
    const Json& row = v.items[r];
    const std::string name = "row " + std::to_string(r + 1);
    if (row.kind != Json::Kind::kArray) {
      return invalid("not a JSON array of rows: " + name + " is " + shown(row));
    }
    const int n = static_cast<int>(row.items.size());
    if (n == 0) return invalid(name + " is empty");
    if (n > max_entries) {
      return invalid(name + " has " + entries(n) + "; at most " + std::to_string(max_entries));
    }
    if (r == 0) g.width = n;
    if (n != g.width) {
      return invalid(name + " has " + entries(n) + ", row 1 has " + std::to_string(g.width));
    }
    for (size_t e = 0; e < row.items.size(); ++e) {
      const std::optional<int> w = whole(row.items[e], 0, max_value);
      if (!w) {
        return invalid(name + ", entry " + std::to_string(e + 1) +
                       " is not a whole number from 0 to " + std::to_string(max_value) + ": " +
                       shown(row.items[e]));
      }
      g.values.push_back(*w);
    }
  }
  return g;
}

std::string rows_json(int width, int height, const std::vector<int>& values) {
  std::string out = "[";
  for (int y = 0; y < height; ++y) {
    out += y == 0 ? "[" : ",[";
    for (int x = 0; x < width; ++x) {
      if (x > 0) out += ',';
      out += std::to_string(values[static_cast<size_t>(y * width + x)]);
    }
    out += ']';
  }
  return out + "]";
}

// The object form's fields, checked against the rows they describe.
struct KernelFields {
  const Json* rows = nullptr;
  const Json* divisor = nullptr;
  const Json* origin = nullptr;
};

Result<KernelFields> kernel_fields(const Json& v) {
  KernelFields f;
  for (size_t i = 0; i < v.keys.size(); ++i) {
    const std::string_view key = v.keys[i];
    const Json& value = v.items[i];
    const Json** slot = key == "rows"      ? &f.rows
                        : key == "divisor" ? &f.divisor
                        : key == "origin"  ? &f.origin
                                           : nullptr;
    if (slot == nullptr) {
      return invalid("unknown field \"" + std::string(key.substr(0, 40)) +
                     "\" (a kernel object has rows, divisor and origin)");
    }
    if (*slot != nullptr) return invalid("the field \"" + std::string(key) + "\" is given twice");
    *slot = &value;
  }
  if (f.rows == nullptr) return invalid("the object has no \"rows\"");
  return f;
}

// Kernel weights are at most the largest divisor: a larger one could not pass the sum rule.
Result<CustomKernel> read_kernel(const Json& v) {
  if (v.kind != Json::Kind::kArray && v.kind != Json::Kind::kObject) {
    return invalid(
        R"(not a JSON array of rows or an object {"rows": [...], "divisor": D, "origin": O})");
  }
  KernelFields f;
  if (v.kind == Json::Kind::kObject) {
    Result<KernelFields> read = kernel_fields(v);
    if (!read) return read.error();
    f = *read;
  } else {
    f.rows = &v;
  }
  // No shape limit here: zero rows and columns are allowed (and cut off by the canonical form);
  // the text limit bounds the work.
  Result<Grid> g = read_rows(*f.rows, kMaxKernelDivisor, 1 << 20, 1 << 20);
  if (!g) return g.error();
  CustomKernel k;
  k.width = g->width;
  k.height = g->height;
  k.origin = (k.width - 1) / 2;
  k.weights = std::move(g->values);
  int64_t sum = 0;
  for (int w : k.weights) sum += w;
  if (f.divisor == nullptr && sum > kMaxKernelDivisor) {
    return invalid("the weights sum to " + std::to_string(sum) +
                   "; the divisor (their sum) is at most " + std::to_string(kMaxKernelDivisor));
  }
  k.divisor = static_cast<int>(sum);
  if (f.divisor != nullptr) {
    const std::optional<int> d = whole(*f.divisor, 1, kMaxKernelDivisor);
    if (!d) {
      return invalid("the divisor must be a whole number from 1 to " +
                     std::to_string(kMaxKernelDivisor) + ", got " + shown(*f.divisor));
    }
    k.divisor = *d;
  }
  if (f.origin != nullptr) {
    const std::optional<int> o = whole(*f.origin, 0, k.width - 1);
    if (!o) {
      return invalid("the origin must be a column of the first row, 0 to " +
                     std::to_string(k.width - 1) + ", got " + shown(*f.origin));
    }
    k.origin = *o;
  }
  return k;
}

struct Reach {
  int left = 0;   // columns left of the current pixel, any row
  int right = 0;  // columns right of it, any row
  int ahead = 0;  // columns right of it on its own row
  int below = 0;  // rows below it
};

// How far the non-zero weights reach from the current pixel.
Reach reach_of(const CustomKernel& k) {
  Reach r;
  for (int y = 0; y < k.height; ++y) {
    for (int x = 0; x < k.width; ++x) {
      if (k.at(x, y) == 0) continue;
      const int dx = x - k.origin;
      r.left = std::max(r.left, -dx);
      r.right = std::max(r.right, dx);
      if (y == 0) r.ahead = std::max(r.ahead, dx);
      r.below = std::max(r.below, y);
    }
  }
  return r;
}

Status check_reach(const CustomKernel& k) {
  const Reach r = reach_of(k);
  auto too_far = [](int n, std::string_view where, int limit) {
    return invalid("reaches " + std::to_string(n) + " " + std::string(where) + "; at most " +
                   std::to_string(limit));
  };
  if (r.ahead > kMaxKernelAhead) {
    return too_far(r.ahead, "columns right of the current pixel on its own row", kMaxKernelAhead);
  }
  if (r.left > kMaxKernelReach) {
    return too_far(r.left, "columns left of the current pixel", kMaxKernelReach);
  }
  if (r.right > kMaxKernelReach) {
    return too_far(r.right, "columns right of the current pixel", kMaxKernelReach);
  }
  if (r.below > kMaxKernelDepth) {
    return too_far(r.below, "rows below the current pixel", kMaxKernelDepth);
  }
  return {};
}

// The smallest centred rectangle holding every non-zero weight (custom.h, to_json).
CustomKernel canonical(const CustomKernel& k) {
  const Reach r = reach_of(k);
  const int half = std::max(r.left, r.right);
  CustomKernel c;
  c.width = 2 * half + 1;
  c.height = r.below + 1;
  c.origin = half;
  c.divisor = k.divisor;
  c.weights.assign(static_cast<size_t>(c.width * c.height), 0);
  for (int y = 0; y < c.height; ++y) {
    for (int x = 0; x < c.width; ++x) {
      const int from = x - half + k.origin;
      if (from >= 0 && from < k.width)
        c.weights[static_cast<size_t>(y * c.width + x)] = k.at(from, y);
    }
  }
  return c;
}

}  // namespace

int CustomMatrix::levels() const {
  return ranks.empty() ? 1 : *std::max_element(ranks.begin(), ranks.end()) + 1;
}

Status check_custom_kernel(const CustomKernel& k) {
  if (k.width < 1 || k.height < 1 ||
      k.weights.size() != static_cast<size_t>(k.width) * static_cast<size_t>(k.height)) {
    return invalid("the rows must all have the same number of entries, at least one");
  }
  if (k.origin < 0 || k.origin >= k.width) {
    return invalid("the origin must be a column of the first row, 0 to " +
                   std::to_string(k.width - 1) + ", got " + std::to_string(k.origin));
  }
  int64_t sum = 0;
  for (size_t i = 0; i < k.weights.size(); ++i) {
    const int w = k.weights[i];
    const int row = static_cast<int>(i) / k.width;
    const int column = static_cast<int>(i) % k.width;
    const std::string where =
        "row " + std::to_string(row + 1) + ", entry " + std::to_string(column + 1);
    if (w < 0)
      return invalid("weights must be whole numbers >= 0: " + where + " is " + std::to_string(w));
    if (row == 0 && column <= k.origin && w != 0) {
      return invalid("the first row must be 0 up to the current pixel (origin " +
                     std::to_string(k.origin) + "), whose error is spent: " + where + " is " +
                     std::to_string(w));
    }
    sum += w;
  }
  if (sum == 0) return invalid("no weight is above 0: the kernel would diffuse nothing");
  if (k.divisor < 1 || k.divisor > kMaxKernelDivisor) {
    return invalid("the divisor must be from 1 to " + std::to_string(kMaxKernelDivisor) + ", got " +
                   std::to_string(k.divisor));
  }
  if (sum > k.divisor) {
    return invalid("weights must sum to at most the divisor (" + std::to_string(sum) + " > " +
                   std::to_string(k.divisor) + "): more would amplify the error");
  }
  return check_reach(k);
}

Status check_custom_matrix(const CustomMatrix& m) {
  if (m.width < 1 || m.height < 1 || m.width > kMaxMatrixSide || m.height > kMaxMatrixSide ||
      m.ranks.size() != static_cast<size_t>(m.width) * static_cast<size_t>(m.height)) {
    return invalid("a matrix is 1x1 to " + std::to_string(kMaxMatrixSide) + "x" +
                   std::to_string(kMaxMatrixSide) + ", all rows the same length");
  }
  for (int r : m.ranks) {
    if (r < 0 || r > kMaxMatrixRank) {
      return invalid("ranks must be whole numbers from 0 to " + std::to_string(kMaxMatrixRank) +
                     ", got " + std::to_string(r));
    }
  }
  return {};
}

Result<CustomKernel> parse_custom_kernel(std::string_view json) {
  if (Status s = check_size(json, kMaxKernelText); !s) return s.error();
  Result<Json> v = Reader(json).document();
  if (!v) return v.error();
  Result<CustomKernel> k = read_kernel(*v);
  if (!k) return k;
  if (Status s = check_custom_kernel(*k); !s) return s.error();
  return canonical(*k);
}

Result<CustomMatrix> parse_custom_matrix(std::string_view json) {
  if (Status s = check_size(json, kMaxMatrixText); !s) return s.error();
  Result<Json> v = Reader(json).document();
  if (!v) return v.error();
  Result<Grid> g = read_rows(*v, kMaxMatrixRank, kMaxMatrixSide, kMaxMatrixSide);
  if (!g) return g.error();
  return CustomMatrix{g->width, g->height, std::move(g->values)};
}

std::string to_json(const CustomKernel& kernel) {
  const CustomKernel c = canonical(kernel);
  const std::string rows = rows_json(c.width, c.height, c.weights);
  int64_t sum = 0;
  for (int w : c.weights) sum += w;
  if (sum == c.divisor) return rows;
  return "{\"rows\":" + rows + ",\"divisor\":" + std::to_string(c.divisor) + "}";
}

std::string to_json(const CustomMatrix& matrix) {
  return rows_json(matrix.width, matrix.height, matrix.ranks);
}

}  // namespace dither::engine
