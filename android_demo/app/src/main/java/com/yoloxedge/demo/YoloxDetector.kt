package com.yoloxedge.demo

import android.content.res.AssetManager
import android.graphics.Bitmap

/** One detection in the pixels of the bitmap that was passed to [YoloxDetector.detect]. */
data class Detection(
    val left: Float, val top: Float, val right: Float, val bottom: Float,
    val score: Float, val label: Int,
)

data class DetectionResult(val detections: List<Detection>, val inferenceMs: Float, val totalMs: Float)

/**
 * A yolox_edge bundle (ncnn FP32 or INT8) from the app's assets, run by the native core.
 *
 * Input size, class names, output names and thresholds all come from the bundle's
 * metadata.json; every model file is checked against its sha256 there before ncnn loads it.
 * Not thread-safe: call it from one thread (MainActivity uses one worker thread).
 */
class YoloxDetector private constructor(private var handle: Long) : AutoCloseable {
    val classNames: Array<String> = nativeClassNames(handle)
    private val settings: FloatArray = nativeSettings(handle)
    val confThreshold: Float get() = settings[0]
    val nmsThreshold: Float get() = settings[1]
    val inputWidth: Int get() = settings[3].toInt()
    val inputHeight: Int get() = settings[4].toInt()
    val description: String = nativeDescribe(handle)

    fun detect(bitmap: Bitmap, conf: Float = confThreshold, nms: Float = nmsThreshold): DetectionResult {
        check(handle != 0L) { "detector is closed" }
        val argb = if (bitmap.config == Bitmap.Config.ARGB_8888) bitmap else bitmap.copy(Bitmap.Config.ARGB_8888, false)
        val out = nativeDetect(handle, argb, conf, nms)
        val n = out[2].toInt()
        val dets = List(n) { i ->
            val o = 3 + 6 * i
            Detection(out[o], out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5].toInt())
        }
        return DetectionResult(dets, out[0], out[1])
    }

    fun labelOf(d: Detection): String = classNames.getOrElse(d.label) { d.label.toString() }

    override fun close() {
        if (handle != 0L) {
            nativeDestroy(handle)
            handle = 0L
        }
    }

    companion object {
        /** Bundles live in assets/bundles/<name>/ (put there by android_demo/prepare_assets.sh). */
        const val BUNDLES_DIR = "bundles"

        init {
            System.loadLibrary("yoloxedge")
        }

        /** Names of the bundles in the assets: folders holding a metadata.json. */
        fun listBundles(assets: AssetManager): List<String> =
            (assets.list(BUNDLES_DIR) ?: emptyArray())
                .filter { assets.list("$BUNDLES_DIR/$it")?.contains("metadata.json") == true }
                .sorted()

        /** Opens a bundle; throws IllegalStateException with the reason when it is incomplete or altered. */
        fun open(assets: AssetManager, bundle: String, threads: Int): YoloxDetector =
            YoloxDetector(nativeCreate(assets, "$BUNDLES_DIR/$bundle", threads))

        @JvmStatic private external fun nativeCreate(assets: AssetManager, dir: String, threads: Int): Long
        @JvmStatic private external fun nativeDestroy(handle: Long)
        @JvmStatic private external fun nativeClassNames(handle: Long): Array<String>
        @JvmStatic private external fun nativeSettings(handle: Long): FloatArray
        @JvmStatic private external fun nativeDescribe(handle: Long): String
        @JvmStatic private external fun nativeDetect(handle: Long, bitmap: Bitmap, conf: Float, nms: Float): FloatArray
    }
}
