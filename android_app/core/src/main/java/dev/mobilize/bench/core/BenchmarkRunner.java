package dev.mobilize.bench.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One benchmark run: check the extras, load the model (init time), apply the delegate, fill the
 * inputs, time the first inference, the warm-ups and the timed runs with the monotonic clock (in
 * microseconds), read memory and thermal status, and build the result of
 * bench_result.schema.json. Every failure becomes a status and a message in the result.
 */
public final class BenchmarkRunner {
  /** Seed of the input values, so two runs of a model see the same inputs. */
  public static final long INPUT_SEED = 0L;

  private final BenchInterpreter interpreter;
  private final Platform platform;

  public BenchmarkRunner(BenchInterpreter interpreter, Platform platform) {
    this.interpreter = interpreter;
    this.platform = platform;
  }

  /** A finished run: its result, and the run id (null when the extras carried no usable one). */
  public static final class Outcome {
    public final String runId;
    public final Status status;
    public final String message;
    public final Map<String, Object> result;

    Outcome(String runId, Status status, String message, Map<String, Object> result) {
      this.runId = runId;
      this.status = status;
      this.message = message;
      this.result = result;
    }

    /** The one line the app logs: run id, status, where the result went, and why it failed. */
    public String logLine(String resultPath) {
      StringBuilder line = new StringBuilder();
      line.append("run_id=").append(runId == null ? "-" : runId);
      line.append(" status=").append(status.wireName);
      if (resultPath != null) {
        line.append(" result=").append(resultPath);
      }
      if (message != null) {
        line.append(" message=").append(message);
      }
      return line.toString();
    }
  }

  public Outcome run(Map<String, ?> extras) {
    String startedAt = platform.isoNow();
    String thermalBefore = platform.thermal.status();
    BenchRequest request;
    try {
      request = BenchRequest.parse(extras);
    } catch (BenchFailure failure) {
      Object rawRunId = extras.get(BenchContract.EXTRA_RUN_ID);
      String runId =
          rawRunId instanceof String && BenchRequest.isValidRunId((String) rawRunId)
              ? (String) rawRunId
              : null;
      Map<String, Object> result =
          template(runId == null ? "-" : runId, fallbackConfig(extras), modelPathOf(extras));
      finish(result, failure.status, failure.getMessage(), startedAt, thermalBefore);
      return new Outcome(runId, failure.status, failure.getMessage(), result);
    }
    Map<String, Object> result = template(request.runId, configOf(request), request.modelPath);
    Status status = Status.OK;
    String message = null;
    try {
      message = measure(request, result);
    } catch (BenchFailure failure) {
      status = failure.status;
      message = failure.getMessage();
    } catch (OutOfMemoryError error) {
      status = Status.OUT_OF_MEMORY;
      message = "out of memory: " + error.getMessage();
    } catch (RuntimeException error) {
      // A runtime bug surfacing as an unchecked exception: still a result, never a crash.
      status = Status.INFERENCE_FAILED;
      message = error.getClass().getSimpleName() + ": " + error.getMessage();
    } finally {
      interpreter.close();
    }
    if (status != Status.OK) {
      result.put("latency", null);
    }
    finish(result, status, message, startedAt, thermalBefore);
    return new Outcome(request.runId, status, message, result);
  }

  /** The measuring itself; fills `result` and returns the message of a successful run. */
  private String measure(BenchRequest request, Map<String, Object> result) throws BenchFailure {
    File model = new File(request.modelPath);
    if (!model.isFile()) {
      throw new BenchFailure(
          Status.MODEL_NOT_FOUND, "model file " + request.modelPath + " does not exist");
    }
    if (!model.canRead()) {
      throw new BenchFailure(
          Status.MODEL_NOT_FOUND,
          "model file " + request.modelPath + " is not readable by the app (check its mode)");
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> modelJson = (Map<String, Object>) result.get("model");
    modelJson.put("size_bytes", model.length());
    modelJson.put("sha256", sha256(model));

    long start = platform.ticker.nanoTime();
    interpreter.load(model, request.threads);
    DelegateReport delegate = interpreter.applyDelegate(request.delegate, request.gpuPrecision);
    double initUs = micros(platform.ticker.nanoTime() - start);
    result.put("delegate", delegate.toJson(request.delegate));
    modelJson.put("inputs", tensors(interpreter.inputs()));
    modelJson.put("outputs", tensors(interpreter.outputs()));

    interpreter.fillInputs(INPUT_SEED);
    double first = timedRun();
    double[] warmup = new double[request.warmupRuns];
    for (int i = 0; i < warmup.length; i++) {
      warmup[i] = timedRun();
    }
    double[] samples = new double[request.numRuns];
    for (int i = 0; i < samples.length; i++) {
      samples[i] = timedRun();
    }
    Map<String, Object> latency = new LinkedHashMap<>();
    latency.put("unit", "us");
    latency.put("init", initUs);
    latency.put("first_inference", first);
    latency.put("warmup", warmup);
    latency.put("samples", samples);
    Stats stats = Stats.of(samples);
    latency.put("stats", stats == null ? null : stats.toJson());
    result.put("latency", latency);

    if (request.wantsQuality()) {
      result.put("quality", runQuality(request));
    }
    return delegate.message;
  }

  private double timedRun() throws BenchFailure {
    long start = platform.ticker.nanoTime();
    interpreter.run();
    return micros(platform.ticker.nanoTime() - start);
  }

  private static double micros(long nanos) {
    return nanos / 1000.0;
  }

  /** Runs the model on each .npy input (sorted by name) and writes its first output. */
  private Map<String, Object> runQuality(BenchRequest request) throws BenchFailure {
    File inputs = new File(request.qualityInputsDir);
    File outputs = new File(request.qualityOutputsDir);
    String[] names = inputs.list();
    if (names == null) {
      throw new BenchFailure(
          Status.INVALID_ARGUMENTS, "quality inputs folder " + inputs + " cannot be listed");
    }
    Arrays.sort(names);
    TensorSpec input = interpreter.inputs().get(0);
    List<Object> written = new ArrayList<>();
    for (String name : names) {
      if (!name.endsWith(".npy")) {
        continue;
      }
      NpyArray array;
      try {
        array = Npy.read(new File(inputs, name));
      } catch (IOException e) {
        throw new BenchFailure(Status.INVALID_ARGUMENTS, "quality input " + e.getMessage());
      }
      if (!array.dtype.equals(input.dtype) || array.elementCount() != input.elementCount()) {
        throw new BenchFailure(
            Status.INVALID_ARGUMENTS,
            "quality input "
                + name
                + " is "
                + array.dtype
                + Arrays.toString(array.shape)
                + " but the model's input is "
                + input.dtype
                + Arrays.toString(input.shape));
      }
      interpreter.setInput(0, array);
      interpreter.run();
      try {
        Npy.write(new File(outputs, name), interpreter.output(0));
      } catch (IOException e) {
        throw new BenchFailure(
            Status.INVALID_ARGUMENTS, "cannot write quality output " + name + ": " + e.getMessage());
      }
      written.add(name);
    }
    Map<String, Object> quality = new LinkedHashMap<>();
    quality.put("outputs_dir", request.qualityOutputsDir);
    quality.put("files", written);
    return quality;
  }

  private void finish(
      Map<String, Object> result,
      Status status,
      String message,
      String startedAt,
      String thermalBefore) {
    result.put("status", status.wireName);
    result.put("message", message);
    result.put("memory", platform.memory.snapshot().toJson());
    Map<String, Object> thermal = new LinkedHashMap<>();
    thermal.put("before", thermalBefore);
    thermal.put("after", platform.thermal.status());
    result.put("thermal", thermal);
    result.put("started_at", startedAt);
    result.put("finished_at", platform.isoNow());
  }

  private Map<String, Object> template(
      String runId, Map<String, Object> config, String modelPath) {
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("schema_version", BenchContract.RESULT_SCHEMA_VERSION);
    result.put("run_id", runId);
    result.put("status", Status.OK.wireName);
    result.put("message", null);
    result.put("runner", BenchContract.RUNNER);
    result.put("config", config);
    Map<String, Object> model = new LinkedHashMap<>();
    model.put("path", modelPath);
    model.put("size_bytes", null);
    model.put("sha256", null);
    model.put("inputs", new ArrayList<Object>());
    model.put("outputs", new ArrayList<Object>());
    result.put("model", model);
    result.put("latency", null);
    result.put("memory", null);
    Map<String, Object> delegate = new LinkedHashMap<>();
    delegate.put("requested", config.get("delegate"));
    delegate.put("applied", false);
    delegate.put("name", null);
    delegate.put("nodes_delegated", null);
    delegate.put("nodes_total", null);
    delegate.put("partitions", null);
    delegate.put("fallback_ops", new ArrayList<Object>());
    delegate.put("message", null);
    result.put("delegate", delegate);
    result.put("thermal", null);
    result.put("device", platform.facts.device());
    Map<String, Object> runtime = new LinkedHashMap<>();
    runtime.put("name", platform.facts.runtimeName());
    runtime.put("version", platform.facts.runtimeVersion());
    runtime.put("app_version", platform.facts.appVersion());
    result.put("runtime", runtime);
    result.put("quality", null);
    result.put("started_at", null);
    result.put("finished_at", null);
    return result;
  }

  private static Map<String, Object> configOf(BenchRequest request) {
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("delegate", request.delegate.wireName);
    config.put("threads", request.threads);
    config.put("warmup_runs", request.warmupRuns);
    config.put("num_runs", request.numRuns);
    config.put("gpu_precision", request.gpuPrecision.wireName);
    return config;
  }

  /** The config of an invalid request: the valid values it had, defaults for the rest. */
  private static Map<String, Object> fallbackConfig(Map<String, ?> extras) {
    Map<String, Object> config = new LinkedHashMap<>();
    Object delegate = extras.get(BenchContract.EXTRA_DELEGATE);
    config.put(
        "delegate",
        delegate instanceof String && Delegate.fromWire((String) delegate) != null
            ? delegate
            : BenchRequest.DEFAULT_DELEGATE);
    config.put("threads", atLeast(extras.get(BenchContract.EXTRA_THREADS), 1, 1));
    config.put("warmup_runs", atLeast(extras.get(BenchContract.EXTRA_WARMUP_RUNS), 0, 0));
    config.put("num_runs", atLeast(extras.get(BenchContract.EXTRA_NUM_RUNS), 1, 1));
    Object precision = extras.get(BenchContract.EXTRA_GPU_PRECISION);
    config.put(
        "gpu_precision",
        precision instanceof String && GpuPrecision.fromWire((String) precision) != null
            ? precision
            : BenchRequest.DEFAULT_GPU_PRECISION);
    return config;
  }

  private static int atLeast(Object value, int minimum, int fallback) {
    return value instanceof Integer && (Integer) value >= minimum ? (Integer) value : fallback;
  }

  private static String modelPathOf(Map<String, ?> extras) {
    Object path = extras.get(BenchContract.EXTRA_MODEL_PATH);
    return path instanceof String ? (String) path : "";
  }

  private static List<Object> tensors(List<TensorSpec> specs) {
    List<Object> json = new ArrayList<>();
    for (TensorSpec spec : specs) {
      json.add(spec.toJson());
    }
    return json;
  }

  static String sha256(File file) throws BenchFailure {
    try {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      InputStream stream = new FileInputStream(file);
      try {
        byte[] chunk = new byte[1 << 16];
        int read;
        while ((read = stream.read(chunk)) != -1) {
          digest.update(chunk, 0, read);
        }
      } finally {
        stream.close();
      }
      StringBuilder hex = new StringBuilder();
      for (byte b : digest.digest()) {
        hex.append(String.format("%02x", b & 0xff));
      }
      return hex.toString();
    } catch (IOException e) {
      throw new BenchFailure(Status.MODEL_NOT_FOUND, "cannot read " + file + ": " + e.getMessage());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is always available", e);
    }
  }

  /** Writes the result as JSON at filesDir/results/RUN_ID.json, atomically; returns the file. */
  public static File writeResult(File filesDir, Outcome outcome) throws IOException {
    if (outcome.runId == null) {
      throw new IOException("a result without a usable run id cannot be named");
    }
    File target = new File(filesDir, BenchContract.resultFileName(outcome.runId));
    AtomicFiles.writeText(target, Json.write(outcome.result));
    return target;
  }
}
