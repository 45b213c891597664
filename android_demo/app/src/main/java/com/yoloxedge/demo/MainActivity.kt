package com.yoloxedge.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.net.Uri
import android.os.Bundle
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.content.ContextCompat
import com.yoloxedge.demo.databinding.ActivityMainBinding
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Pick an image or run the camera; each frame goes through the selected bundle and is shown
 * with its boxes, labels, scores and the inference time.
 *
 * All detector work (loading, picked images, camera frames) runs on one worker thread, so a
 * detector is never used by two threads or closed while it runs.
 */
class MainActivity : AppCompatActivity() {
    private lateinit var binding: ActivityMainBinding
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var detector: YoloxDetector? = null  // touched on the worker thread only
    private var cameraProvider: ProcessCameraProvider? = null
    private val threads = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)

    private val pickImage = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri != null) detectPicked(uri)
    }

    private val cameraPermission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else binding.status.setText(R.string.camera_denied)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityMainBinding.inflate(layoutInflater)
        setContentView(binding.root)

        val bundles = YoloxDetector.listBundles(assets)
        if (bundles.isEmpty()) {
            binding.status.setText(R.string.no_bundle)
            binding.pickButton.isEnabled = false
            binding.cameraButton.isEnabled = false
            return
        }
        binding.bundleSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, bundles)
        binding.bundleSpinner.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) =
                loadBundle(bundles[position])

            override fun onNothingSelected(parent: AdapterView<*>?) = Unit
        }
        binding.pickButton.setOnClickListener {
            stopCamera()
            pickImage.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }
        binding.cameraButton.setOnClickListener {
            when {
                cameraProvider != null -> stopCamera()
                ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED ->
                    startCamera()
                else -> cameraPermission.launch(Manifest.permission.CAMERA)
            }
        }
    }

    private fun loadBundle(name: String) = worker.execute {
        detector?.close()
        detector = null
        val message = try {
            val d = YoloxDetector.open(assets, name, threads)
            detector = d
            "${d.description}: ${d.classNames.size} classes, conf ${d.confThreshold}, NMS ${d.nmsThreshold}"
        } catch (e: IllegalStateException) {
            "cannot open $name: ${e.message}"
        }
        runOnUiThread { binding.status.text = message }
    }

    private fun detectPicked(uri: Uri) = worker.execute {
        val bitmap = try {
            ImageLoading.load(contentResolver, uri)
        } catch (e: Exception) {
            runOnUiThread { binding.status.text = "cannot read the image: ${e.message}" }
            return@execute
        }
        detectAndShow(bitmap)
    }

    /** Worker thread: detect, draw, hand the picture and timing to the UI. */
    private fun detectAndShow(bitmap: Bitmap) {
        val d = detector ?: return
        val result = try {
            d.detect(bitmap)
        } catch (e: IllegalStateException) {
            runOnUiThread { binding.status.text = "detection failed: ${e.message}" }
            return
        }
        val drawn = BoxRenderer.draw(bitmap, result, d)
        val text = "%s | inference %.1f ms (with pre/post %.1f ms) | %d objects%s".format(
            d.description, result.inferenceMs, result.totalMs, result.detections.size,
            result.detections.take(3).joinToString("") { ", ${d.labelOf(it)} %.2f".format(it.score) })
        runOnUiThread {
            binding.imageView.setImageBitmap(drawn)
            binding.status.text = text
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)  // never queue stale frames
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(worker) { frame -> analyze(frame) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, analysis)
            cameraProvider = provider
            binding.cameraButton.setText(R.string.stop_camera)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(frame: ImageProxy) {
        val bitmap = frame.use { ImageLoading.rotate(it.toBitmap(), it.imageInfo.rotationDegrees) }
        // toBitmap() leaves the frame flagged as having alpha, though every pixel's is 255: flagged
        // opaque, the native side (AndroidBitmapInfo.flags, API 30+) skips its un-premultiply scan.
        bitmap.setHasAlpha(false)
        detectAndShow(bitmap)
    }

    private fun stopCamera() {
        cameraProvider?.unbindAll()
        cameraProvider = null
        binding.cameraButton.setText(R.string.camera)
    }

    override fun onDestroy() {
        super.onDestroy()
        cameraProvider?.unbindAll()
        worker.execute { detector?.close(); detector = null }
        worker.shutdown()
    }
}
