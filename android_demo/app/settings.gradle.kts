// The clinician's app as a build of its own: run Gradle in this folder (see ../README.md). It is not
// part of android_demo's JVM build (make), which needs no Android SDK.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "edgekit-clinician"
