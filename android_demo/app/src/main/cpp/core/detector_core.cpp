#include "detector_core.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "json.h"

namespace yolox {

Letterbox compute_letterbox(int img_w, int img_h, int input_w, int input_h) {
    if (img_w <= 0 || img_h <= 0 || input_w <= 0 || input_h <= 0)
        throw std::invalid_argument("compute_letterbox: sizes must be positive");
    Letterbox lb;
    // Same double arithmetic and truncation as Python's min(H/h, W/w) and max(1, int(h*r)): a
    // 1200x1 strip keeps one row (it was all padding here, one row in the SDK).
    lb.ratio = std::min(static_cast<double>(input_h) / img_h, static_cast<double>(input_w) / img_w);
    lb.resized_w = std::max(1, static_cast<int>(img_w * lb.ratio));
    lb.resized_h = std::max(1, static_cast<int>(img_h * lb.ratio));
    lb.input_w = input_w;
    lb.input_h = input_h;
    return lb;
}

namespace {

constexpr int kCoefBits = 11;  // OpenCV's INTER_RESIZE_COEF_BITS
constexpr int kCoefScale = 1 << kCoefBits;

struct Tap {
    int src0, src1;  // source indices of the two taps
    short w0, w1;    // fixed-point weights (sum = 2048)
};

short round_coef(float v) {
    // OpenCV's saturate_cast<short>(float) rounds half to even (lrintf in the default mode).
    return static_cast<short>(std::nearbyint(v * kCoefScale));
}

// Taps along one axis, as OpenCV computes them for INTER_LINEAR. Along x a tap that falls
// outside the image is moved to the edge with weight 1 (fx = 0); along y the weights are
// kept and only the row indices are clamped, which rounds differently in fixed point.
std::vector<Tap> linear_taps(int src_len, int dst_len, bool reset_edges) {
    std::vector<Tap> taps(dst_len);
    double scale = 1.0 / (static_cast<double>(dst_len) / src_len);
    for (int d = 0; d < dst_len; ++d) {
        float f = static_cast<float>((d + 0.5) * scale - 0.5);
        int s = static_cast<int>(std::floor(f));
        f -= s;
        if (reset_edges) {
            if (s < 0) { f = 0.f; s = 0; }
            if (s >= src_len - 1) { f = 0.f; s = src_len - 1; }
        }
        short w0 = round_coef(1.f - f);
        taps[d] = {std::clamp(s, 0, src_len - 1), std::clamp(s + 1, 0, src_len - 1), w0,
                   static_cast<short>(kCoefScale - w0)};
    }
    return taps;
}

int16_t sat16(int v) { return static_cast<int16_t>(std::clamp(v, -32768, 32767)); }

// OpenCV's SIMD vertical step for 8-bit output: ((S0>>4)*b0>>16) + ((S1>>4)*b1>>16), then (+2)>>2.
uint8_t vertical_mix(int s0, int s1, short b0, short b1) {
    int a = (static_cast<int>(sat16(s0 >> 4)) * b0) >> 16;
    int b = (static_cast<int>(sat16(s1 >> 4)) * b1) >> 16;
    int v = (a + b + 2) >> 2;
    return static_cast<uint8_t>(std::clamp(v, 0, 255));
}

}  // namespace

bool unpremultiply(const uint8_t* pixels, int img_w, int img_h, int row_bytes, std::vector<uint8_t>& out) {
    if (!pixels) throw std::invalid_argument("unpremultiply: null buffer");
    bool opaque = true;
    for (int y = 0; y < img_h && opaque; ++y) {
        const uint8_t* row = pixels + static_cast<size_t>(y) * row_bytes;
        for (int x = 0; x < img_w; ++x)
            if (row[x * 4 + 3] != 255) {
                opaque = false;
                break;
            }
    }
    if (opaque) return false;
    out.resize(static_cast<size_t>(img_w) * img_h * 4);
    for (int y = 0; y < img_h; ++y) {
        const uint8_t* s = pixels + static_cast<size_t>(y) * row_bytes;
        uint8_t* d = &out[static_cast<size_t>(y) * img_w * 4];
        for (int x = 0; x < img_w; ++x, s += 4, d += 4) {
            const int a = s[3];
            for (int c = 0; c < 3; ++c)
                d[c] = a == 255 ? s[c] : a == 0 ? 0 : static_cast<uint8_t>(std::min(255, (s[c] * 255 + a / 2) / a));
            d[3] = s[3];
        }
    }
    return true;
}

void fill_input(const uint8_t* pixels, int img_w, int img_h, int row_bytes, PixelFormat fmt,
                const Letterbox& lb, int pad_value, const std::string& channel_order, float* dst) {
    if (!pixels || !dst) throw std::invalid_argument("fill_input: null buffer");
    const int cn = (fmt == PixelFormat::BGRA || fmt == PixelFormat::RGBA) ? 4 : 3;
    const bool src_bgr = (fmt == PixelFormat::BGR || fmt == PixelFormat::BGRA);
    const bool dst_bgr = channel_order != "RGB";
    // dst plane p takes source channel src_ch[p].
    int src_ch[3];
    for (int p = 0; p < 3; ++p) src_ch[p] = (src_bgr == dst_bgr) ? p : 2 - p;

    const int W = lb.input_w, H = lb.input_h, nw = lb.resized_w, nh = lb.resized_h;
    const size_t plane = static_cast<size_t>(W) * H;
    std::fill(dst, dst + 3 * plane, static_cast<float>(pad_value));
    if (nw <= 0 || nh <= 0) return;

    std::vector<uint8_t> out(static_cast<size_t>(nw) * nh * 3);
    if (nw == img_w && nh == img_h) {
        for (int y = 0; y < nh; ++y)
            for (int x = 0; x < nw; ++x)
                for (int c = 0; c < 3; ++c)
                    out[(static_cast<size_t>(y) * nw + x) * 3 + c] = pixels[static_cast<size_t>(y) * row_bytes + x * cn + c];
    } else if (img_w == 2 * nw && img_h == 2 * nh) {
        // OpenCV switches an exact 2x INTER_LINEAR downscale to INTER_AREA: rounded 2x2 mean.
        for (int y = 0; y < nh; ++y) {
            const uint8_t* r0 = pixels + static_cast<size_t>(2 * y) * row_bytes;
            const uint8_t* r1 = r0 + row_bytes;
            for (int x = 0; x < nw; ++x)
                for (int c = 0; c < 3; ++c) {
                    int i = 2 * x * cn + c;
                    out[(static_cast<size_t>(y) * nw + x) * 3 + c] =
                        static_cast<uint8_t>((r0[i] + r0[i + cn] + r1[i] + r1[i + cn] + 2) >> 2);
                }
        }
    } else {
        const std::vector<Tap> tx = linear_taps(img_w, nw, true), ty = linear_taps(img_h, nh, false);
        // Horizontal pass into int rows (weights sum to 2048), then the vertical mix.
        std::vector<int> rows(static_cast<size_t>(img_h) * nw * 3);
        std::vector<char> done(img_h, 0);
        auto hrow = [&](int sy) -> const int* {
            int* r = &rows[static_cast<size_t>(sy) * nw * 3];
            if (!done[sy]) {
                const uint8_t* s = pixels + static_cast<size_t>(sy) * row_bytes;
                for (int x = 0; x < nw; ++x) {
                    const Tap& t = tx[x];
                    for (int c = 0; c < 3; ++c)
                        r[x * 3 + c] = s[t.src0 * cn + c] * t.w0 + s[t.src1 * cn + c] * t.w1;
                }
                done[sy] = 1;
            }
            return r;
        };
        for (int y = 0; y < nh; ++y) {
            const Tap& t = ty[y];
            const int* r0 = hrow(t.src0);
            const int* r1 = hrow(t.src1);
            uint8_t* o = &out[static_cast<size_t>(y) * nw * 3];
            for (int i = 0; i < nw * 3; ++i) o[i] = vertical_mix(r0[i], r1[i], t.w0, t.w1);
        }
    }
    for (int y = 0; y < nh; ++y)
        for (int x = 0; x < nw; ++x)
            for (int p = 0; p < 3; ++p)
                dst[p * plane + static_cast<size_t>(y) * W + x] = out[(static_cast<size_t>(y) * nw + x) * 3 + src_ch[p]];
}

// A box with an inf or NaN coordinate (exp(wh) overflowing in an undertrained model) is no
// detection, as in the SDK (postprocess.filter_nms_numpy): clamped, an inf box became a
// full-width phantom, and a NaN one was drawn.
static bool finite_box(const float* b) {
    return std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]);
}

std::vector<Detection> candidates_topk(const float* boxes, const float* scores, const float* labels, int k,
                                       float conf) {
    std::vector<Detection> out;
    for (int i = 0; i < k; ++i) {
        if (!(scores[i] >= conf)) continue;  // also drops NaN
        const float* b = boxes + 4 * i;
        if (!finite_box(b)) continue;
        out.push_back({b[0], b[1], b[2], b[3], scores[i], static_cast<int>(std::lround(labels[i]))});
    }
    return out;
}

std::vector<Detection> candidates_dense(const float* boxes, const float* scores, int n, int num_classes,
                                        float conf) {
    std::vector<Detection> out;
    for (int i = 0; i < n; ++i) {
        const float* s = scores + static_cast<size_t>(i) * num_classes;
        int best = 0;
        bool nan = std::isnan(s[0]);
        for (int c = 1; c < num_classes; ++c) {
            nan = nan || std::isnan(s[c]);
            if (s[c] > s[best]) best = c;
        }
        // numpy's argmax picks a NaN, which no threshold keeps: a row with one is no candidate
        if (nan || !(s[best] >= conf)) continue;
        const float* b = boxes + 4 * static_cast<size_t>(i);
        if (!finite_box(b)) continue;
        out.push_back({b[0], b[1], b[2], b[3], s[best], best});
    }
    return out;
}

float box_iou(const Detection& a, const Detection& b) {
    float iw = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
    float ih = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
    float inter = iw * ih;
    float area_a = std::max(0.f, a.x2 - a.x1) * std::max(0.f, a.y2 - a.y1);
    float area_b = std::max(0.f, b.x2 - b.x1) * std::max(0.f, b.y2 - b.y1);
    return inter / std::max(area_a + area_b - inter, 1e-9f);
}

std::vector<Detection> nms(std::vector<Detection> cands, float iou, bool agnostic, int max_det) {
    std::stable_sort(cands.begin(), cands.end(),
                     [](const Detection& a, const Detection& b) { return a.score > b.score; });
    std::vector<Detection> keep;
    for (const Detection& d : cands) {
        if (static_cast<int>(keep.size()) >= max_det) break;
        bool suppressed = false;
        for (const Detection& k : keep) {
            if ((agnostic || k.label == d.label) && box_iou(k, d) > iou) { suppressed = true; break; }
        }
        if (!suppressed) keep.push_back(d);
    }
    return keep;
}

void map_to_image(std::vector<Detection>& dets, const Letterbox& lb, int img_w, int img_h) {
    // float32 division by the ratio, as numpy does on float32 boxes.
    const float r = static_cast<float>(lb.ratio);
    const float w = static_cast<float>(img_w), h = static_cast<float>(img_h);
    for (Detection& d : dets) {
        d.x1 = std::clamp(d.x1 / r, 0.f, w);
        d.x2 = std::clamp(d.x2 / r, 0.f, w);
        d.y1 = std::clamp(d.y1 / r, 0.f, h);
        d.y2 = std::clamp(d.y2 / r, 0.f, h);
    }
}

}  // namespace yolox
