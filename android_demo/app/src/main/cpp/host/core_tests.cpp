// Unit tests of the detection core that need no Python: run by ctest and by tests/native.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "detector_core.h"
#include "json.h"
#include "sha256.h"

using namespace yolox;

static int g_failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++g_failures;                                                        \
        }                                                                        \
    } while (0)

template <typename F>
static bool throws(F&& f) {
    try {
        f();
    } catch (const std::exception&) {
        return true;
    }
    return false;
}

static void test_json() {
    json::Value v = json::parse(" {\"b\" :[1, 2.5e1,-0.5 ],\n\t\"a\":\"x\\u00e9\\ud83d\\ude00\\n\", \"c\":{\"d\":null,\"e\":true}} ");
    CHECK(v.is_object());
    CHECK(v.at("b").as_array().size() == 3);
    CHECK(v.at("b").as_array()[1].as_number() == 25.0);
    CHECK(v.at("b").as_array()[2].as_number() == -0.5);
    CHECK(v.at("a").as_string() == "x\xc3\xa9\xf0\x9f\x98\x80\n");
    CHECK(v.at("c").at("d").is_null());
    CHECK(v.at("c").at("e").as_bool());
    CHECK(v.find("zz") == nullptr);
    CHECK(json::parse("{\"k\": 1, \"k\": 2}").at("k").as_int() == 2);  // last duplicate wins
    CHECK(throws([] { json::parse("{\"a\": 1,}"); }));
    CHECK(throws([] { json::parse("[1, 2"); }));
    CHECK(throws([] { json::parse("{\"a\": 01}"); }));
    CHECK(throws([] { json::parse("\"abc"); }));
    CHECK(throws([] { json::parse("{} x"); }));
    CHECK(throws([] { json::parse("\"\\ud800\""); }));
    CHECK(throws([] { json::parse(std::string(200, '[') + std::string(200, ']')); }));  // depth bound
    CHECK(throws([] { json::parse("{\"a\": 1.5}").at("a").as_int(); }));
    CHECK(throws([] { json::parse("{\"a\": \"s\"}").at("a").as_number(); }));
}

static void test_letterbox() {
    Letterbox lb = compute_letterbox(768, 576, 416, 416);
    CHECK(lb.resized_w == 416 && lb.resized_h == 312);
    CHECK(std::fabs(lb.ratio - 416.0 / 768.0) < 1e-15);
    lb = compute_letterbox(100, 300, 416, 416);
    CHECK(lb.resized_h == 416 && lb.resized_w == 138);
    CHECK(throws([] { compute_letterbox(0, 10, 416, 416); }));
}

static void test_fill_pads_and_orders() {
    // 2x1 BGR image into a 4x4 canvas: ratio 2, the image covers the top-left 4x2.
    const uint8_t px[] = {10, 20, 30, 10, 20, 30};
    Letterbox lb = compute_letterbox(2, 1, 4, 4);
    CHECK(lb.resized_w == 4 && lb.resized_h == 2);
    std::vector<float> bgr(48), rgb(48);
    fill_input(px, 2, 1, 6, PixelFormat::BGR, lb, 114, "BGR", bgr.data());
    fill_input(px, 2, 1, 6, PixelFormat::BGR, lb, 114, "RGB", rgb.data());
    CHECK(bgr[0] == 10 && bgr[16] == 20 && bgr[32] == 30);
    CHECK(rgb[0] == 30 && rgb[32] == 10);
    CHECK(bgr[2 * 4 + 0] == 114 && bgr[15] == 114);  // rows 2-3 are padding
    const uint8_t rgba[] = {30, 20, 10, 255, 30, 20, 10, 255};
    std::vector<float> from_rgba(48);
    fill_input(rgba, 2, 1, 8, PixelFormat::RGBA, lb, 114, "BGR", from_rgba.data());
    CHECK(from_rgba == bgr);
}

static void test_unpremultiply() {
    std::vector<uint8_t> out;
    const uint8_t opaque[] = {1, 2, 3, 255, 4, 5, 6, 255};
    CHECK(!unpremultiply(opaque, 2, 1, 8, out) && out.empty());
    // Row stride 12 (one padding pixel), two rows; colours as Android stores them (c * a / 255).
    const uint8_t px[] = {100, 50, 0, 128, 7, 7, 7, 0, 9, 9, 9, 9,
                          200, 100, 10, 255, 255, 255, 255, 254, 9, 9, 9, 9};
    CHECK(unpremultiply(px, 2, 2, 12, out) && out.size() == 16);
    CHECK(out[0] == 199 && out[1] == 100 && out[2] == 0 && out[3] == 128);  // 100 * 255 / 128 = 199.2
    CHECK(out[4] == 0 && out[7] == 0);                                       // alpha 0: colour lost
    CHECK(out[8] == 200 && out[9] == 100 && out[10] == 10 && out[11] == 255);
    CHECK(out[12] == 255 && out[15] == 254);                                 // clamped, not 256
    CHECK(throws([&] { unpremultiply(nullptr, 1, 1, 4, out); }));
}

static Detection det(float x1, float y1, float x2, float y2, float s, int l) { return {x1, y1, x2, y2, s, l}; }

static void test_nms() {
    CHECK(std::fabs(box_iou(det(0, 0, 10, 10, 1, 0), det(5, 0, 15, 10, 1, 0)) - 50.f / 150.f) < 1e-6f);
    std::vector<Detection> c = {det(0, 0, 10, 10, 0.5f, 0), det(1, 0, 11, 10, 0.9f, 0), det(1, 0, 11, 10, 0.8f, 1),
                                det(50, 50, 60, 60, 0.7f, 0)};
    std::vector<Detection> k = nms(c, 0.45f, false, 300);
    CHECK(k.size() == 3);
    CHECK(k[0].score == 0.9f && k[1].score == 0.8f && k[2].score == 0.7f);  // other class survives
    k = nms(c, 0.45f, true, 300);
    CHECK(k.size() == 2);  // agnostic: the class-1 box is suppressed too
    k = nms(c, 0.45f, false, 1);
    CHECK(k.size() == 1 && k[0].score == 0.9f);
    // IoU exactly at the threshold is kept (suppression needs IoU > nms).
    k = nms({det(0, 0, 10, 10, 0.9f, 0), det(5, 0, 15, 10, 0.8f, 0)}, 50.f / 150.f, false, 300);
    CHECK(k.size() == 2);
}

static void test_candidates_and_mapping() {
    const float boxes[] = {0, 0, 10, 10, 5, 5, 20, 20, 1, 1, 2, 2};
    const float scores[] = {0.1f, 0.6f, 0.3f, 0.3f, 0.2f, 0.1f};  // [3, 2]
    std::vector<Detection> d = candidates_dense(boxes, scores, 3, 2, 0.25f);
    CHECK(d.size() == 2 && d[0].label == 1 && d[1].label == 0 && d[1].score == 0.3f);  // tie -> first class
    const float s1[] = {0.9f, 0.2f, 0.5f}, l1[] = {3.f, 1.f, 7.f};
    d = candidates_topk(boxes, s1, l1, 3, 0.5f);
    CHECK(d.size() == 2 && d[0].label == 3 && d[1].label == 7);
    Letterbox lb = compute_letterbox(20, 10, 40, 40);  // ratio 2
    std::vector<Detection> m = {det(-4, 2, 50, 30, 1, 0)};
    map_to_image(m, lb, 20, 10);
    CHECK(m[0].x1 == 0 && m[0].y1 == 1 && m[0].x2 == 20 && m[0].y2 == 10);
}

static const char* kMeta = R"({
  "schema_version": 1, "format": "ncnn", "model": "yolox_nano", "variant": "nano",
  "class_names": ["person", "bi\"cycle"], "input_size": [416, 320],
  "preprocess": {"input_size": [416, 320], "letterbox": "top-left", "pad_value": 114,
                 "channel_order": "BGR", "value_range": [0.0, 255.0], "mean": null, "std": null},
  "strides": [8, 16, 32],
  "graph": {"decode": true, "topk": 100, "nms": false, "box_format": "xyxy", "box_units": "input pixels",
            "output_kind": "topk", "raw_activated": false},
  "input": {"name": "in0", "shape": [1, 3, 416, 320], "dtype": "float32"},
  "outputs": [{"name": "boxes", "blob": "out0", "shape": [1, 100, 4], "dtype": "float32"},
              {"name": "scores", "blob": "out1", "shape": [1, 100], "dtype": "float32"},
              {"name": "labels", "blob": "out2", "shape": [1, 100], "dtype": "float32"}],
  "precision": "int8", "source": {"checkpoint_sha256": null}, "model_file": "model.ncnn.param",
  "files": {"model.ncnn.param": "aa", "model.ncnn.bin": "bb"},
  "postprocess": {"conf": 0.35, "nms": 0.5, "max_det": 50, "agnostic": false}
})";

static void test_metadata() {
    ModelConfig c = parse_metadata(kMeta);
    CHECK(c.name == "yolox_nano" && c.precision == "int8");
    CHECK(c.input_h == 416 && c.input_w == 320);
    CHECK(c.class_names.size() == 2 && c.class_names[1] == "bi\"cycle");
    CHECK(c.output_kind == "topk" && c.input_name == "in0");
    CHECK(c.boxes_output == "out0" && c.scores_output == "out1" && c.labels_output == "out2");
    CHECK(c.model_files.size() == 2 && c.file_sha256[1].second == "bb");
    CHECK(std::fabs(c.thresholds.conf - 0.35f) < 1e-6f && c.thresholds.max_det == 50);
    std::string raw = kMeta;
    raw.replace(raw.find("\"output_kind\": \"topk\""), 21, "\"output_kind\": \"raw\" ");
    CHECK(throws([&] { parse_metadata(raw); }));
    std::string norm = kMeta;
    norm.replace(norm.find("\"mean\": null"), 12, "\"mean\": [1,2,3]");
    CHECK(throws([&] { parse_metadata(norm); }));
    CHECK(throws([] { parse_metadata("{\"schema_version\": 1}"); }));
    CHECK(throws([] { parse_metadata("[]"); }));
}

static void test_sha256() {
    CHECK(sha256_hex(nullptr, 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const std::string abc = "abc";
    CHECK(sha256_hex(reinterpret_cast<const uint8_t*>(abc.data()), 3) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    std::string million(1000000, 'a');  // FIPS 180-2 long test vector, fed in uneven pieces
    Sha256 h;
    for (size_t i = 0; i < million.size(); i += 777)
        h.update(reinterpret_cast<const uint8_t*>(million.data()) + i, std::min<size_t>(777, million.size() - i));
    CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main() {
    test_sha256();
    test_json();
    test_letterbox();
    test_fill_pads_and_orders();
    test_unpremultiply();
    test_nms();
    test_candidates_and_mapping();
    test_metadata();
    if (g_failures) {
        std::fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    std::printf("all core tests passed\n");
    return 0;
}
