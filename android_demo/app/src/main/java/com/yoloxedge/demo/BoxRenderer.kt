package com.yoloxedge.demo

import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.RectF
import kotlin.math.max

/** Draws detections (box, class name, score) onto a copy of the image. */
object BoxRenderer {
    private val palette = intArrayOf(
        Color.rgb(230, 25, 75), Color.rgb(60, 180, 75), Color.rgb(0, 130, 200), Color.rgb(245, 130, 48),
        Color.rgb(145, 30, 180), Color.rgb(70, 240, 240), Color.rgb(240, 50, 230), Color.rgb(210, 245, 60),
    )

    fun draw(image: Bitmap, result: DetectionResult, detector: YoloxDetector): Bitmap {
        val out = image.copy(Bitmap.Config.ARGB_8888, true)
        val canvas = Canvas(out)
        // Line width and text size follow the image so labels stay readable on any resolution.
        val unit = max(out.width, out.height) / 400f
        val box = Paint().apply { style = Paint.Style.STROKE; strokeWidth = max(2f, unit * 1.5f) }
        val text = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Color.WHITE; textSize = max(14f, unit * 9f) }
        val fill = Paint().apply { style = Paint.Style.FILL }
        for (d in result.detections) {
            val color = palette[d.label % palette.size]
            box.color = color
            fill.color = color
            canvas.drawRect(RectF(d.left, d.top, d.right, d.bottom), box)
            val label = "%s %.2f".format(detector.labelOf(d), d.score)
            val w = text.measureText(label)
            val h = text.textSize * 1.2f
            val top = if (d.top - h >= 0) d.top - h else d.top
            canvas.drawRect(d.left, top, d.left + w + 8f, top + h, fill)
            canvas.drawText(label, d.left + 4f, top + h - text.descent() - 2f, text)
        }
        return out
    }
}
