#include "json.h"

#include <cstdint>
#include <locale>
#include <sstream>

namespace yolox {
namespace json {

bool Value::as_bool() const {
    if (!is_bool()) throw std::runtime_error("JSON: expected a boolean");
    return b_;
}

double Value::as_number() const {
    if (!is_number()) throw std::runtime_error("JSON: expected a number");
    return num_;
}

int Value::as_int() const {
    double d = as_number();
    if (d != static_cast<double>(static_cast<long long>(d)) || d > 2147483647.0 || d < -2147483648.0)
        throw std::runtime_error("JSON: expected an integer");
    return static_cast<int>(d);
}

const std::string& Value::as_string() const {
    if (!is_string()) throw std::runtime_error("JSON: expected a string");
    return str_;
}

const std::vector<Value>& Value::as_array() const {
    if (!is_array()) throw std::runtime_error("JSON: expected an array");
    return items_;
}

const Value* Value::find(const std::string& key) const {
    if (!is_object()) return nullptr;
    // Last duplicate wins, as in Python's json module.
    for (size_t i = keys_.size(); i-- > 0;)
        if (keys_[i] == key) return &items_[i];
    return nullptr;
}

const Value& Value::at(const std::string& key) const {
    const Value* v = find(key);
    if (!v) throw std::runtime_error("JSON: missing key \"" + key + "\"");
    return *v;
}

Value Value::make_bool(bool b) { Value v; v.type_ = Type::Bool; v.b_ = b; return v; }
Value Value::make_number(double d) { Value v; v.type_ = Type::Number; v.num_ = d; return v; }
Value Value::make_string(std::string s) { Value v; v.type_ = Type::String; v.str_ = std::move(s); return v; }

Value Value::make_array(std::vector<Value> items) {
    Value v; v.type_ = Type::Array; v.items_ = std::move(items); return v;
}

Value Value::make_object(std::vector<std::string> keys, std::vector<Value> values) {
    Value v; v.type_ = Type::Object; v.keys_ = std::move(keys); v.items_ = std::move(values); return v;
}

namespace {

class Parser {
public:
    explicit Parser(const std::string& s) : s_(s) {}

    Value document() {
        skip_ws();
        Value v = value(0);
        skip_ws();
        if (pos_ != s_.size()) fail("unexpected data after the document");
        return v;
    }

private:
    const std::string& s_;
    size_t pos_ = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw ParseError("JSON parse error at byte " + std::to_string(pos_) + ": " + what);
    }

    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }

    char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }

    bool literal(const char* word) {
        size_t n = std::char_traits<char>::length(word);
        if (s_.compare(pos_, n, word) != 0) return false;
        pos_ += n;
        return true;
    }

    Value value(int depth) {
        if (depth > kMaxDepth) fail("nesting too deep");
        char c = peek();
        if (c == '{') return object(depth);
        if (c == '[') return array(depth);
        if (c == '"') return Value::make_string(string());
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        if (literal("true")) return Value::make_bool(true);
        if (literal("false")) return Value::make_bool(false);
        if (literal("null")) return Value::make_null();
        fail("unexpected character");
    }

    Value object(int depth) {
        expect('{');
        std::vector<std::string> keys;
        std::vector<Value> vals;
        skip_ws();
        if (peek() == '}') { ++pos_; return Value::make_object(keys, vals); }
        for (;;) {
            skip_ws();
            if (peek() != '"') fail("expected a string key");
            keys.push_back(string());
            skip_ws();
            expect(':');
            skip_ws();
            vals.push_back(value(depth + 1));
            skip_ws();
            if (peek() == ',') { ++pos_; continue; }
            expect('}');
            return Value::make_object(std::move(keys), std::move(vals));
        }
    }

    Value array(int depth) {
        expect('[');
        std::vector<Value> items;
        skip_ws();
        if (peek() == ']') { ++pos_; return Value::make_array(items); }
        for (;;) {
            skip_ws();
            items.push_back(value(depth + 1));
            skip_ws();
            if (peek() == ',') { ++pos_; continue; }
            expect(']');
            return Value::make_array(std::move(items));
        }
    }

    Value number() {
        size_t start = pos_;
        if (peek() == '-') ++pos_;
        if (peek() == '0') {
            ++pos_;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') ++pos_;
        } else {
            fail("bad number");
        }
        if (peek() == '.') {
            ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("bad number");
            while (peek() >= '0' && peek() <= '9') ++pos_;
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-') ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("bad number");
            while (peek() >= '0' && peek() <= '9') ++pos_;
        }
        // The classic locale keeps '.' as the decimal point whatever the process locale is.
        std::istringstream in(s_.substr(start, pos_ - start));
        in.imbue(std::locale::classic());
        double d = 0.0;
        in >> d;
        if (in.fail()) fail("bad number");
        return Value::make_number(d);
    }

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) fail("short \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = s_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= c - '0';
            else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
            else fail("bad \\u escape");
        }
        return v;
    }

    static void put_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::string string() {
        expect('"');
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) fail("unterminated string");
            char c = s_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') { out += c; continue; }
            if (pos_ >= s_.size()) fail("unterminated escape");
            char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    uint32_t cp = hex4();
                    // Python's json.dumps escapes non-ASCII as surrogate pairs by default.
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (s_.compare(pos_, 2, "\\u") != 0) fail("lone high surrogate");
                        pos_ += 2;
                        uint32_t lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("bad low surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        fail("lone low surrogate");
                    }
                    put_utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
    }
};

}  // namespace

Value parse(const std::string& text) { return Parser(text).document(); }

}  // namespace json
}  // namespace yolox
