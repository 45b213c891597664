// The app's detection core, free of Android and ncnn: letterbox maths and input fill,
// metadata.json reading, threshold + class-aware NMS over the graph's outputs, and the
// mapping of boxes back to image pixels. Built and tested on the host (see host/).
//
// It mirrors yolox_edge's Python contract (data/preprocess.py, postprocess.py):
//   letterbox: r = min(H/h, W/w); resized = (int(w*r), int(h*r)); image at the top-left,
//              the rest filled with pad_value; BGR 0..255 float, NCHW, no mean/std.
//   postprocess: keep score >= conf, greedy NMS (class-aware unless agnostic) with
//              suppression when IoU > nms, at most max_det; boxes / r, clipped to the image.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace yolox {

struct Letterbox {
    double ratio = 1.0;  // network-input pixels per image pixel
    int resized_w = 0, resized_h = 0;  // size of the image inside the canvas
    int input_w = 0, input_h = 0;      // canvas (network input) size
};

// Geometry of the letterbox for an image of img_w x img_h into input_w x input_h.
Letterbox compute_letterbox(int img_w, int img_h, int input_w, int input_h);

enum class PixelFormat { BGR, RGB, BGRA, RGBA };

// Bilinear resize (OpenCV INTER_LINEAR conventions: half-pixel centres, 11-bit fixed point)
// of an 8-bit image into the top-left of the canvas, pad elsewhere, written as float NCHW
// planes in `channel_order` ("BGR" or "RGB"). dst holds 3 * input_h * input_w floats.
void fill_input(const uint8_t* pixels, int img_w, int img_h, int row_bytes, PixelFormat fmt,
                const Letterbox& lb, int pad_value, const std::string& channel_order, float* dst);

// Android decodes images into bitmaps whose colour is premultiplied by alpha; OpenCV, which the
// Python side reads with, drops alpha and keeps the colour as stored. For a 4-channel image
// (alpha last) with any pixel below 255 alpha, writes into `out` a tightly packed copy (row
// bytes img_w * 4) with the colour divided by alpha again (rounded; 0 where alpha is 0, whose
// colour is gone) and returns true; returns false, leaving `out` alone, when every pixel is
// opaque (the colour is then the same either way).
bool unpremultiply(const uint8_t* pixels, int img_w, int img_h, int row_bytes, std::vector<uint8_t>& out);

struct Detection {
    float x1, y1, x2, y2;  // xyxy
    float score;
    int label;
};

struct Thresholds {
    float conf = 0.3f;   // keep score >= conf
    float nms = 0.45f;   // suppress IoU > nms
    bool agnostic = false;
    int max_det = 300;
};

// Everything the app needs from a bundle's metadata.json.
struct ModelConfig {
    std::string name;
    std::string precision;
    int input_w = 0, input_h = 0;
    int pad_value = 114;
    std::string channel_order = "BGR";
    std::vector<std::string> class_names;
    std::string output_kind;  // "topk" (boxes [K,4], scores [K], labels [K]) or "decoded" (boxes [N,4], scores [N,C])
    std::string input_name;
    std::string boxes_output, scores_output, labels_output;  // labels_output empty for "decoded"
    std::vector<std::string> model_files;  // e.g. model.ncnn.param, model.ncnn.bin
    std::vector<std::pair<std::string, std::string>> file_sha256;  // from metadata "files"
    Thresholds thresholds;
};

// Parse metadata.json text; throws std::runtime_error saying which field is wrong.
ModelConfig parse_metadata(const std::string& json_text);

// Candidates from a top-K graph: boxes [k,4], scores [k], labels [k] (float-coded ints).
std::vector<Detection> candidates_topk(const float* boxes, const float* scores, const float* labels, int k,
                                       float conf);

// Candidates from a decoded graph: boxes [n,4], scores [n,c]; each anchor keeps its best
// class (first maximum, like numpy argmax).
std::vector<Detection> candidates_dense(const float* boxes, const float* scores, int n, int num_classes,
                                        float conf);

float box_iou(const Detection& a, const Detection& b);

// Greedy NMS: sort by descending score (stable), keep a box unless a kept box of the same
// class (any class if agnostic) overlaps it with IoU > iou; at most max_det kept.
std::vector<Detection> nms(std::vector<Detection> candidates, float iou, bool agnostic, int max_det);

// Network-input pixels -> image pixels: divide by the ratio, clip to [0, w] x [0, h].
void map_to_image(std::vector<Detection>& dets, const Letterbox& lb, int img_w, int img_h);

}  // namespace yolox
