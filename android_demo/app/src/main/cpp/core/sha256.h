// SHA-256 (FIPS 180-4), so the app can check each bundle file against metadata.json
// before handing it to ncnn, as the Python side does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace yolox {

class Sha256 {
public:
    Sha256();
    void update(const uint8_t* data, size_t len);
    std::string hex_digest();  // finishes the hash; call once

private:
    void block(const uint8_t* p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

std::string sha256_hex(const uint8_t* data, size_t len);

}  // namespace yolox
