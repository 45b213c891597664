// Versions are pinned in gradle/libs.versions.toml; the ncnn package version in gradle.properties.
plugins {
    alias(libs.plugins.android.application) apply false
    alias(libs.plugins.kotlin.android) apply false
}
