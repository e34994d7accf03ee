package org.edgekit.app

import android.app.Activity
import android.content.ActivityNotFoundException
import android.content.Intent
import android.net.Uri
import android.os.Build
import android.os.Bundle as SavedState
import android.os.Handler
import android.os.Looper
import android.provider.DocumentsContract
import android.provider.OpenableColumns
import android.view.View
import android.view.WindowInsets
import android.widget.Button
import android.widget.EditText
import android.widget.ProgressBar
import android.widget.TextView
import android.widget.Toast
import org.edgekit.core.Bundle
import org.edgekit.core.BundleError
import org.edgekit.core.NightError
import org.edgekit.core.Replay
import java.io.File
import java.io.IOException
import java.security.PublicKey
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * The clinician's screen: verify a bundle (the shipped one, or one picked through the Storage Access
 * Framework) against the hospital's pinned key, open a night, replay it through the core and ExecuTorch,
 * show the minutes. All the work (copies, verification, the model) runs on one worker thread; this class
 * only moves files into the app's storage and puts the core's answers on the screen.
 */
class MainActivity : Activity() {
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private val main = Handler(Looper.getMainLooper())

    // Touched on the main thread only (the worker hands its results back through `main`).
    private var bundle: Bundle? = null
    private var runner: ExecuTorchModelRunner? = null
    private var digest: ReplayDigest? = null
    private var busy = false
    /** Bumped by each new task, so a late answer to an older one is dropped. */
    private var generation = 0

    private lateinit var screen: View
    private lateinit var bundleStatus: TextView
    private lateinit var samplingRate: EditText
    private lateinit var progress: ProgressBar
    private lateinit var progressText: TextView
    private lateinit var result: View
    private lateinit var nightTitle: TextView
    private lateinit var nightSummary: TextView
    private lateinit var reference: TextView
    private lateinit var strip: NightStripView
    private lateinit var minuteDetail: TextView
    private lateinit var rrWindow: RrWindowView
    private lateinit var windowCaption: TextView
    private lateinit var errorScreen: View
    private lateinit var errorTitle: TextView
    private lateinit var errorMessage: TextView
    private lateinit var errorHint: TextView
    private lateinit var bundleButtons: List<Button>
    private lateinit var nightButtons: List<Button>

    override fun onCreate(savedInstanceState: SavedState?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        screen = findViewById(R.id.screen)
        bundleStatus = findViewById(R.id.bundle_status)
        samplingRate = findViewById(R.id.sampling_rate)
        progress = findViewById(R.id.progress)
        progressText = findViewById(R.id.progress_text)
        result = findViewById(R.id.result)
        nightTitle = findViewById(R.id.night_title)
        nightSummary = findViewById(R.id.night_summary)
        reference = findViewById(R.id.reference)
        strip = findViewById(R.id.strip)
        minuteDetail = findViewById(R.id.minute_detail)
        rrWindow = findViewById(R.id.rr_window)
        windowCaption = findViewById(R.id.window_caption)
        errorScreen = findViewById(R.id.error_screen)
        errorTitle = findViewById(R.id.error_title)
        errorMessage = findViewById(R.id.error_message)
        errorHint = findViewById(R.id.error_hint)
        bundleButtons = listOf(findViewById<Button>(R.id.use_shipped_bundle), findViewById<Button>(R.id.open_bundle_folder),
            findViewById<Button>(R.id.open_bundle_files))
        nightButtons = listOf(findViewById<Button>(R.id.open_rr), findViewById<Button>(R.id.open_ecg_csv),
            findViewById<Button>(R.id.open_record))
        applySystemBarInsets(findViewById(R.id.root))

        bundleButtons[0].setOnClickListener { loadBundle { shippedBundle() } }
        bundleButtons[1].setOnClickListener { pick(Intent(Intent.ACTION_OPEN_DOCUMENT_TREE), PICK_BUNDLE_FOLDER) }
        bundleButtons[2].setOnClickListener { pick(openDocuments(multiple = true), PICK_BUNDLE_FILES) }
        nightButtons[0].setOnClickListener { pick(openDocuments(multiple = false), PICK_RR) }
        nightButtons[1].setOnClickListener {
            // A CSV carries no rate: ask for it before the picker, not after the copy.
            try {
                NightInput.parseSamplingRate(samplingRate.text.toString())
                pick(openDocuments(multiple = false), PICK_ECG_CSV)
            } catch (error: NightError) {
                showError(error)
            }
        }
        nightButtons[2].setOnClickListener { pick(openDocuments(multiple = true), PICK_RECORD) }
        findViewById<Button>(R.id.error_back).setOnClickListener { showContent() }
        strip.onMinuteSelected = ::showMinute

        refreshButtons()
        loadBundle { shippedBundle() }
    }

    override fun onDestroy() {
        super.onDestroy()
        main.removeCallbacksAndMessages(null)
        val loaded = runner
        runner = null
        worker.execute { loaded?.close() }
        worker.shutdown()
    }

    // --- Bundles ---------------------------------------------------------------------------------

    /** The pinned key: the hospital's public key, shipped in the APK's assets. */
    private fun hospitalKey(): PublicKey =
        Bundle.publicKey(assets.open(PUBLIC_KEY_ASSET).bufferedReader().use { it.readText() })

    /** The bundle shipped in assets/bundle/, copied out first (Bundle.load and Module.load read files). */
    private fun shippedBundle(): File {
        val folder = freshFolder("shipped-bundle")
        for (name in assets.list(BUNDLE_ASSETS).orEmpty()) {
            assets.open("$BUNDLE_ASSETS/$name").use { input -> File(folder, name).outputStream().use { input.copyTo(it) } }
        }
        return folder
    }

    /**
     * Copies a bundle in (`copy`, on the worker), verifies it with the pinned key and loads its model.
     * Any BundleError (unsigned, altered, another preprocessing, a model the runtime refuses) puts up the
     * refusal screen, and no bundle stays loaded: nothing runs.
     */
    private fun loadBundle(copy: () -> File) {
        unloadBundle() // the old model is closed on the worker before the new one loads
        bundleStatus.text = getString(R.string.bundle_verifying)
        inBackground(getString(R.string.bundle_verifying), work = {
            val verified = Bundle.load(copy(), hospitalKey())
            verified to ExecuTorchModelRunner.load(verified, File(noBackupFilesDir, "model"))
        }, done = { (verified, loaded) ->
            bundle = verified
            runner = loaded
            bundleStatus.text = describe(verified)
        }, failed = {
            bundleStatus.text = getString(R.string.bundle_none)
        })
    }

    private fun unloadBundle() {
        val old = runner
        runner = null
        bundle = null
        digest = null
        result.visibility = View.GONE
        bundleStatus.text = getString(R.string.bundle_none)
        worker.execute { old?.close() }
        refreshButtons()
    }

    private fun describe(bundle: Bundle): String = getString(R.string.bundle_verified, bundle.id,
        bundle.manifest.optJSONObject("bundle")?.optString("quantize", "?") ?: "?", bundle.pte.name,
        Bundle.sha256Hex(bundle.pteBytes).take(12), bundle.pteBytes.size, bundle.labels.joinToString(", "))

    // --- Nights ----------------------------------------------------------------------------------

    /** Builds the night (`input`, on the worker, after its files are copied) and replays it through the bundle. */
    private fun score(input: () -> Pair<NightInput, File>) {
        val verified = bundle ?: return
        val model = runner ?: return
        digest = null
        result.visibility = View.GONE
        inBackground(getString(R.string.scoring), work = {
            val (night, folder) = input()
            try {
                ReplayDigest(Replay.of(verified, night.read(verified), model), verified)
            } finally {
                folder.deleteRecursively() // the beats are in memory; the night's files need not stay on the phone
            }
        }, done = ::showReplay, failed = { error ->
            // A model that answers outside its contract is refused like any bad bundle: it runs no more nights.
            if (error is BundleError) unloadBundle()
        })
    }

    private fun showReplay(replay: ReplayDigest) {
        digest = replay
        val r = replay.replay
        nightTitle.text = getString(R.string.night_title, r.night.name, replay.minutes)
        nightSummary.text = getString(R.string.summary, replay.estimatedAhi,
            r.severity ?: getString(R.string.no_severity),
            getString(if (r.decision.apneic) R.string.apneic else R.string.not_apneic),
            ReplayDigest.formatAhi(replay.ahiThreshold), replay.flagged, replay.noSignal, tidy(r.night.beatSource),
            String.format(Locale.US, "%.2f", r.runtimeSeconds))
        val known = replay.reference
        reference.visibility = if (known == null) View.GONE else View.VISIBLE
        if (known != null) reference.text = getString(R.string.reference, known.first, known.second)
        strip.setMinutes(replay.states)
        strip.contentDescription = getString(R.string.strip_description, replay.minutes, replay.flagged, replay.noSignal)
        minuteDetail.text = getString(R.string.tap_a_minute)
        rrWindow.clear()
        rrWindow.visibility = View.GONE
        windowCaption.visibility = View.GONE
        result.visibility = View.VISIBLE
    }

    private fun showMinute(minute: Int) {
        val replay = digest ?: return
        val state = when (replay.states[minute]) {
            MinuteState.FLAGGED -> R.string.state_flagged
            MinuteState.NOT_FLAGGED -> R.string.state_not_flagged
            MinuteState.NO_SIGNAL -> R.string.state_no_signal
        }
        minuteDetail.text = getString(R.string.minute_detail, minute, ReplayDigest.clock(minute), ReplayDigest.clock(minute + 1),
            getString(state), replay.probability(minute), replay.smoothed(minute), replay.threshold.toString())
        rrWindow.show(replay.window(minute), replay.minuteSamples, replay.samplesPerMinute, replay.contextMinutes)
        windowCaption.text = getString(R.string.window_caption, replay.gridHz.toString(), replay.contextMinutes)
        rrWindow.visibility = View.VISIBLE
        windowCaption.visibility = View.VISIBLE
    }

    // --- Picking files (Storage Access Framework) ------------------------------------------------

    private fun openDocuments(multiple: Boolean): Intent = Intent(Intent.ACTION_OPEN_DOCUMENT).apply {
        addCategory(Intent.CATEGORY_OPENABLE)
        type = "*/*"
        putExtra(Intent.EXTRA_ALLOW_MULTIPLE, multiple)
    }

    private fun pick(intent: Intent, request: Int) {
        try {
            startActivityForResult(intent, request)
        } catch (error: ActivityNotFoundException) {
            Toast.makeText(this, R.string.no_picker, Toast.LENGTH_LONG).show()
        }
    }

    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        if (resultCode != RESULT_OK || data == null) return
        when (requestCode) {
            PICK_BUNDLE_FOLDER -> data.data?.let { tree -> loadBundle { copyTree(tree, freshFolder("picked-bundle")) } }
            PICK_BUNDLE_FILES -> pickedUris(data).takeIf { it.isNotEmpty() }?.let { uris ->
                loadBundle { copyAll(uris, freshFolder("picked-bundle")) }
            }
            PICK_RR -> data.data?.let { uri ->
                score { nightFile(uri).let { (file, folder) -> NightInput.RrFile(file) to folder } }
            }
            PICK_ECG_CSV -> data.data?.let { uri ->
                val rate = samplingRate.text.toString()
                score { nightFile(uri).let { (file, folder) -> NightInput.EcgCsv(file, rate) to folder } }
            }
            PICK_RECORD -> pickedUris(data).takeIf { it.isNotEmpty() }?.let { uris ->
                score { freshNightFolder().let { folder -> NightInput.Record(copyAll(uris, folder)) to folder } }
            }
        }
    }

    private fun pickedUris(data: Intent): List<Uri> {
        val clip = data.clipData ?: return listOfNotNull(data.data)
        return (0 until clip.itemCount).mapNotNull { clip.getItemAt(it).uri }
    }

    private fun nightFile(uri: Uri): Pair<File, File> {
        val folder = freshNightFolder()
        return copy(uri, folder, displayName(uri)) to folder
    }

    private fun copyAll(uris: List<Uri>, folder: File): File {
        for (uri in uris) copy(uri, folder, displayName(uri))
        return folder
    }

    /** The files (not sub-folders) of a picked folder. */
    private fun copyTree(tree: Uri, folder: File): File {
        val children = DocumentsContract.buildChildDocumentsUriUsingTree(tree, DocumentsContract.getTreeDocumentId(tree))
        val columns = arrayOf(DocumentsContract.Document.COLUMN_DOCUMENT_ID, DocumentsContract.Document.COLUMN_DISPLAY_NAME,
            DocumentsContract.Document.COLUMN_MIME_TYPE)
        val files = mutableListOf<Pair<Uri, String?>>()
        contentResolver.query(children, columns, null, null, null)?.use { cursor ->
            while (cursor.moveToNext()) {
                if (cursor.getString(2) == DocumentsContract.Document.MIME_TYPE_DIR) continue
                files += DocumentsContract.buildDocumentUriUsingTree(tree, cursor.getString(0)) to cursor.getString(1)
            }
        } ?: throw IOException("cannot list the folder picked")
        for ((uri, name) in files) copy(uri, folder, name)
        return folder
    }

    private fun copy(uri: Uri, folder: File, name: String?): File {
        val target = File(folder, NightInput.safeFileName(name, "file-${folder.list().orEmpty().size}"))
        val input = contentResolver.openInputStream(uri) ?: throw IOException("cannot open ${target.name}")
        input.use { source -> target.outputStream().use { source.copyTo(it) } }
        return target
    }

    private fun displayName(uri: Uri): String? {
        contentResolver.query(uri, arrayOf(OpenableColumns.DISPLAY_NAME), null, null, null)?.use { cursor ->
            if (cursor.moveToFirst() && !cursor.isNull(0)) return cursor.getString(0)
        }
        return uri.lastPathSegment?.substringAfterLast('/')
    }

    /** An empty folder of the app's own storage (not backed up: it holds patients' nights). */
    private fun freshFolder(name: String): File {
        val folder = File(noBackupFilesDir, name)
        folder.deleteRecursively()
        if (!folder.mkdirs()) throw IOException("cannot create $folder")
        return folder
    }

    private fun freshNightFolder(): File = freshFolder(NIGHT_FOLDER)

    /** A message or source without the app's private folders in it (the file's own name stays). */
    private fun tidy(text: String): String =
        text.replace(File(noBackupFilesDir, NIGHT_FOLDER).path + File.separator, "").replace(noBackupFilesDir.path + File.separator, "")

    // --- Running work off the main thread, and the screens ----------------------------------------

    /**
     * Runs `work` on the worker; `done` (or the error screen, then `failed`) on the main thread. The
     * buttons are off meanwhile, so one task runs at a time.
     */
    private fun <T> inBackground(message: String, work: () -> T, done: (T) -> Unit, failed: (Throwable) -> Unit = {}) {
        val task = ++generation
        setBusy(true, message)
        worker.execute {
            val outcome: Result<T> = try {
                Result.success(work())
            } catch (error: Exception) {
                Result.failure(error)
            } catch (error: LinkageError) { // ExecuTorch's native library missing or refused (UnsatisfiedLinkError)
                Result.failure(error)
            }
            main.post {
                if (task != generation || isDestroyed) return@post
                setBusy(false, null)
                outcome.fold(done) { error ->
                    showError(error)
                    failed(error)
                }
                refreshButtons()
            }
        }
    }

    private fun setBusy(working: Boolean, message: String?) {
        busy = working
        progress.visibility = if (working) View.VISIBLE else View.GONE
        progressText.visibility = if (working) View.VISIBLE else View.GONE
        progressText.text = message.orEmpty()
        refreshButtons()
    }

    /** Nights only through a verified bundle; nothing new while a task runs. */
    private fun refreshButtons() {
        for (button in bundleButtons) button.isEnabled = !busy
        for (button in nightButtons) button.isEnabled = !busy && bundle != null && runner != null
    }

    private fun showError(error: Throwable) {
        val (title, hint) = when (error) {
            is BundleError -> R.string.error_bundle_title to R.string.error_bundle_hint
            is NightError -> R.string.error_night_title to R.string.error_night_hint
            is IOException, is SecurityException -> R.string.error_files_title to R.string.error_night_hint
            else -> R.string.error_model_title to R.string.error_night_hint
        }
        errorTitle.setText(title)
        errorMessage.text = tidy(error.message ?: error.javaClass.simpleName)
        errorHint.setText(hint)
        screen.visibility = View.GONE
        errorScreen.visibility = View.VISIBLE
    }

    private fun showContent() {
        errorScreen.visibility = View.GONE
        screen.visibility = View.VISIBLE
        refreshButtons()
    }

    /** Keeps the screen clear of the status and navigation bars (edge to edge from targetSdk 35). */
    private fun applySystemBarInsets(root: View) {
        root.setOnApplyWindowInsetsListener { view, insets ->
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                val bars = insets.getInsets(WindowInsets.Type.systemBars())
                view.setPadding(bars.left, bars.top, bars.right, bars.bottom)
            } else {
                padBelowApi30(view, insets)
            }
            insets
        }
    }

    @Suppress("DEPRECATION") // the only inset getters before API 30
    private fun padBelowApi30(view: View, insets: WindowInsets) {
        view.setPadding(insets.systemWindowInsetLeft, insets.systemWindowInsetTop, insets.systemWindowInsetRight,
            insets.systemWindowInsetBottom)
    }

    companion object {
        const val PUBLIC_KEY_ASSET = "hospital-signing.pub"
        const val BUNDLE_ASSETS = "bundle"
        private const val NIGHT_FOLDER = "night"
        private const val PICK_BUNDLE_FOLDER = 1
        private const val PICK_BUNDLE_FILES = 2
        private const val PICK_RR = 3
        private const val PICK_ECG_CSV = 4
        private const val PICK_RECORD = 5
    }
}
