package dev.mobilize.bench.core;

/**
 * What the harness, this app and the emulated device agree on.
 *
 * <p>Mirrors device_bench/app_contract.py; tests/android_app/test_java_core.py checks that both
 * sides spell every name the same way.
 */
public final class BenchContract {
  private BenchContract() {}

  public static final String PACKAGE = "dev.mobilize.bench";
  public static final String ACTIVITY = ".BenchmarkActivity";
  public static final int APP_VERSION_CODE = 1;
  public static final String APP_VERSION_NAME = "0.1.0";
  public static final String LOG_TAG = "MobilizeBench";
  public static final String RESULTS_SUBDIR = "results";
  public static final int RESULT_SCHEMA_VERSION = 1;
  public static final String RUNNER = "android_app";

  public static final String EXTRA_MODEL_PATH = "model_path";
  public static final String EXTRA_DELEGATE = "delegate";
  public static final String EXTRA_THREADS = "threads";
  public static final String EXTRA_WARMUP_RUNS = "warmup_runs";
  public static final String EXTRA_NUM_RUNS = "num_runs";
  public static final String EXTRA_GPU_PRECISION = "gpu_precision";
  public static final String EXTRA_RUN_ID = "run_id";
  public static final String EXTRA_QUALITY_INPUTS = "quality_inputs_dir";
  public static final String EXTRA_QUALITY_OUTPUTS = "quality_outputs_dir";

  public static final String[] STRING_EXTRAS = {
    EXTRA_MODEL_PATH,
    EXTRA_DELEGATE,
    EXTRA_GPU_PRECISION,
    EXTRA_RUN_ID,
    EXTRA_QUALITY_INPUTS,
    EXTRA_QUALITY_OUTPUTS,
  };
  public static final String[] INT_EXTRAS = {EXTRA_THREADS, EXTRA_WARMUP_RUNS, EXTRA_NUM_RUNS};

  public static final String[] DELEGATES = {"cpu", "gpu", "nnapi"};
  public static final String[] GPU_PRECISIONS = {"fp16", "fp32"};

  /** The result file of a run, relative to the app's files folder. */
  public static String resultFileName(String runId) {
    return RESULTS_SUBDIR + "/" + runId + ".json";
  }
}
