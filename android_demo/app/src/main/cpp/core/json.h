// Minimal JSON reader: enough for a bundle's metadata.json, no dependencies.
// Accepts any whitespace and key order; rejects trailing garbage and nesting deeper
// than kMaxDepth (so a hostile file cannot blow the stack).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace yolox {
namespace json {

struct ParseError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Value {
public:
    enum class Type { Null, Bool, Number, String, Array, Object };

    Value() = default;
    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::Null; }
    bool is_bool() const { return type_ == Type::Bool; }
    bool is_number() const { return type_ == Type::Number; }
    bool is_string() const { return type_ == Type::String; }
    bool is_array() const { return type_ == Type::Array; }
    bool is_object() const { return type_ == Type::Object; }

    // Typed access; throws std::runtime_error naming the expected type on mismatch.
    bool as_bool() const;
    double as_number() const;
    int as_int() const;
    const std::string& as_string() const;
    const std::vector<Value>& as_array() const;

    // Object access. find() returns nullptr when absent (or when this is not an object).
    const Value* find(const std::string& key) const;
    const Value& at(const std::string& key) const;  // throws when absent
    const std::vector<std::string>& keys() const { return keys_; }
    const std::vector<Value>& values() const { return items_; }  // array items or object values
    size_t size() const { return items_.size(); }

    // Construction (used by the parser).
    static Value make_null() { return Value(); }
    static Value make_bool(bool b);
    static Value make_number(double d);
    static Value make_string(std::string s);
    static Value make_array(std::vector<Value> items);
    static Value make_object(std::vector<std::string> keys, std::vector<Value> values);

private:
    Type type_ = Type::Null;
    bool b_ = false;
    double num_ = 0.0;
    std::string str_;
    std::vector<std::string> keys_;  // object keys, parallel to items_
    std::vector<Value> items_;
};

constexpr int kMaxDepth = 64;

// Parse a whole document; throws ParseError with the byte offset on bad input.
Value parse(const std::string& text);

}  // namespace json
}  // namespace yolox
