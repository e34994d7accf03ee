// The clinician's app: the platform-free core (../core, compiled here from its sources, the same ones
// the JUnit tests run) plus a ModelRunner over ExecuTorch's Android Module. Never built on the machine
// it was written on (no Android SDK there): see ../README.md, "What was verified here and what was not".
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.application") version "8.9.0"
    id("org.jetbrains.kotlin.android") version "2.1.10"
}

android {
    namespace = "org.edgekit.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.edgekit.app"
        minSdk = 23
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // The ABIs executorch-android ships its native runtime for.
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
        // The core reads the hospital's PEM key with java.util.Base64, which Android has from API 26 only;
        // desugar_jdk_libs provides it below that (since 2.0.4).
        isCoreLibraryDesugaringEnabled = true
    }

    sourceSets["main"].java.srcDirs("src/main/kotlin", "../core/src/main/kotlin")
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    // ExecuTorch's Android API (org.pytorch.executorch.Module), the runtime that the kit's executorch==1.4.1
    // wheel pairs with; it brings fbjni, soloader's nativeloader and androidx.core with it.
    implementation("org.pytorch:executorch-android:1.4.1")
    coreLibraryDesugaring("com.android.tools:desugar_jdk_libs:2.0.4")
    // org.json (the core's manifest and replay JSON) is Android's own: no dependency.
}
