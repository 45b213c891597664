plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

val ncnnVersion: String = providers.gradleProperty("ncnnVersion").get()
val ncnnDir = file("src/main/cpp/ncnn-$ncnnVersion-android")

android {
    namespace = "com.yoloxedge.demo"
    compileSdk = 34
    ndkVersion = "26.3.11579264"

    defaultConfig {
        applicationId = "com.yoloxedge.demo"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            // ABIs of ncnn's Android package that phones and the emulator use.
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
        externalNativeBuild {
            cmake {
                cppFlags += "-std=c++17"
                arguments += listOf("-DANDROID_STL=c++_static", "-DNCNN_ANDROID_DIR=${ncnnDir.absolutePath}")
            }
        }
    }

    externalNativeBuild {
        cmake {
            path = file("src/main/cpp/CMakeLists.txt")
            version = "3.22.1"
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    buildFeatures {
        viewBinding = true
    }
    androidResources {
        // ncnn .bin / .param are read through AAssetManager with AASSET_MODE_BUFFER: keep them uncompressed.
        noCompress += listOf("bin", "param")
    }
}

// Fail early with the fix when ncnn has not been fetched (the CMake error would come later and vaguer).
tasks.named("preBuild") {
    doFirst {
        if (!ncnnDir.isDirectory) {
            throw GradleException("ncnn $ncnnVersion not found at $ncnnDir: run ./get_ncnn.sh (see README.md)")
        }
    }
}

// ./gradlew :app:prepareBundle -Pbundle=/path/to/model.zip [-PbundleName=nano_int8]
tasks.register<Exec>("prepareBundle") {
    group = "yolox_edge"
    description = "Verify a yolox_edge bundle and put it into the app's assets (android_demo/prepare_assets.sh)."
    val bundle = providers.gradleProperty("bundle")
    val name = providers.gradleProperty("bundleName")
    // A relative -Pbundle= is taken from Gradle's current folder (where ./gradlew runs; -p moves it),
    // not from android_demo/, where the script runs.
    val invokedFrom = gradle.startParameter.currentDir
    workingDir = rootDir
    doFirst {
        if (!bundle.isPresent || bundle.get().isBlank()) {
            throw GradleException("prepareBundle needs the bundle: -Pbundle=/path/to/model.zip")
        }
        val zip = File(bundle.get()).let { if (it.isAbsolute) it else invokedFrom.resolve(it) }
        val args = mutableListOf("./prepare_assets.sh", zip.absolutePath)
        if (name.isPresent) args += name.get()
        commandLine(args)
    }
}

dependencies {
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.androidx.activity.ktx)
    implementation(libs.androidx.lifecycle.runtime.ktx)
    implementation(libs.material)
    implementation(libs.androidx.constraintlayout)
    implementation(libs.androidx.camera.core)
    implementation(libs.androidx.camera.camera2)
    implementation(libs.androidx.camera.lifecycle)
    implementation(libs.androidx.exifinterface)
    implementation(libs.kotlinx.coroutines.android)
}
