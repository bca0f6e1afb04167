package dev.mobilize.bench.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class BenchmarkRunnerTest {
  @Rule public TemporaryFolder folder = new TemporaryFolder();

  private FakeTicker ticker;
  private File model;

  @Before
  public void setUp() throws IOException {
    ticker = new FakeTicker();
    TestPlatform.thermal[0] = "none";
    model = folder.newFile("tiny model.tflite");
    Files.write(model.toPath(), "TFL3-not-really".getBytes("UTF-8"));
  }

  private Map<String, Object> extras(int warmups, int runs) {
    Map<String, Object> extras = new HashMap<>();
    extras.put("run_id", "run-1");
    extras.put("model_path", model.getPath());
    extras.put("delegate", "cpu");
    extras.put("threads", 2);
    extras.put("warmup_runs", warmups);
    extras.put("num_runs", runs);
    return extras;
  }

  private BenchmarkRunner.Outcome run(FakeInterpreter interpreter, Map<String, Object> extras) {
    return new BenchmarkRunner(interpreter, TestPlatform.create(ticker)).run(extras);
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> map(Object value) {
    return (Map<String, Object>) value;
  }

  @Test
  public void timesFirstWarmupsAndRunsInMicroseconds() {
    // first inference, 2 warm-ups, 4 timed runs (nanoseconds)
    FakeInterpreter interpreter =
        new FakeInterpreter(ticker, 9_000_000, 3_000_000, 2_500_000, 1_000_000, 1_200_500, 800_000, 2_000_000);
    BenchmarkRunner.Outcome outcome = run(interpreter, extras(2, 4));
    assertEquals(Status.OK, outcome.status);
    Map<String, Object> latency = map(outcome.result.get("latency"));
    assertEquals("us", latency.get("unit"));
    assertEquals(2000.0, (Double) latency.get("init"), 0.0); // load 1.5 ms + delegate 0.5 ms
    assertEquals(9000.0, (Double) latency.get("first_inference"), 0.0);
    assertArrayEquals(new double[] {3000.0, 2500.0}, (double[]) latency.get("warmup"), 0.0);
    assertArrayEquals(
        new double[] {1000.0, 1200.5, 800.0, 2000.0}, (double[]) latency.get("samples"), 0.0);
    Map<String, Object> stats = map(latency.get("stats"));
    assertEquals(4, stats.get("count"));
    assertEquals(1250.125, (Double) stats.get("mean"), 1e-9);
    assertEquals(1100.25, (Double) stats.get("p50"), 1e-9);
    assertEquals(7, interpreter.runs);
    assertEquals(2, interpreter.loadedThreads);
    assertEquals(BenchmarkRunner.INPUT_SEED, interpreter.filledSeed);
    assertTrue(interpreter.closed);
  }

  @Test
  public void resultCarriesModelDelegateMemoryThermalAndFacts() {
    FakeInterpreter interpreter = new FakeInterpreter(ticker);
    interpreter.report =
        new DelegateReport(true, "gpu", 40, 44, 3, Arrays.asList("RSQRT"), null);
    Map<String, Object> extras = extras(0, 1);
    extras.put("delegate", "gpu");
    extras.put("gpu_precision", "fp32");
    Map<String, Object> result = run(interpreter, extras).result;
    assertEquals(Delegate.GPU, interpreter.appliedDelegate);
    assertEquals(GpuPrecision.FP32, interpreter.appliedPrecision);
    assertEquals(1, result.get("schema_version"));
    assertEquals("android_app", result.get("runner"));
    Map<String, Object> modelJson = map(result.get("model"));
    assertEquals(15L, modelJson.get("size_bytes"));
    // sha256sum of the 15 bytes "TFL3-not-really"
    assertEquals(
        "b539d09edcb3a37b56e02fa71bbab1f2fbf32cb7164ebb5fc98e332657f3114e",
        modelJson.get("sha256"));
    assertEquals("input", map(((List<?>) modelJson.get("inputs")).get(0)).get("name"));
    Map<String, Object> delegate = map(result.get("delegate"));
    assertEquals("gpu", delegate.get("requested"));
    assertEquals(true, delegate.get("applied"));
    assertEquals(3, delegate.get("partitions"));
    assertEquals(Arrays.asList("RSQRT"), delegate.get("fallback_ops"));
    Map<String, Object> memory = map(result.get("memory"));
    assertEquals(181234.0, (Double) memory.get("peak_rss"), 0.0);
    assertEquals(40000.0, (Double) memory.get("native_heap"), 0.0);
    assertEquals("none", map(result.get("thermal")).get("before"));
    assertEquals("Pixel 8", map(result.get("device")).get("model"));
    assertEquals("0.1.0", map(result.get("runtime")).get("app_version"));
  }

  @Test
  public void thermalStatusIsReadBeforeAndAfter() {
    FakeInterpreter interpreter =
        new FakeInterpreter(ticker) {
          @Override
          public void run() throws BenchFailure {
            super.run();
            TestPlatform.thermal[0] = "moderate";
          }
        };
    Map<String, Object> thermal = map(run(interpreter, extras(0, 2)).result.get("thermal"));
    assertEquals("none", thermal.get("before"));
    assertEquals("moderate", thermal.get("after"));
  }

  @Test
  public void missingModelIsAStatusNotACrash() {
    model.delete();
    FakeInterpreter interpreter = new FakeInterpreter(ticker);
    BenchmarkRunner.Outcome outcome = run(interpreter, extras(1, 3));
    assertEquals(Status.MODEL_NOT_FOUND, outcome.status);
    assertTrue(outcome.message, outcome.message.contains("does not exist"));
    assertEquals("model_not_found", outcome.result.get("status"));
    assertNull(outcome.result.get("latency"));
    assertEquals(0, interpreter.runs);
  }

  @Test
  public void loadAndDelegateFailuresKeepTheirStatus() {
    FakeInterpreter broken = new FakeInterpreter(ticker);
    broken.loadFailure =
        new BenchFailure(Status.MODEL_LOAD_FAILED, "not a valid TFLite model: bad identifier");
    BenchmarkRunner.Outcome load = run(broken, extras(1, 3));
    assertEquals("model_load_failed", load.result.get("status"));
    assertEquals("not a valid TFLite model: bad identifier", load.result.get("message"));
    assertTrue(broken.closed);

    FakeInterpreter refused = new FakeInterpreter(ticker);
    refused.delegateFailure =
        new BenchFailure(Status.DELEGATE_FAILED, "GPU delegate: Failed to apply delegate");
    BenchmarkRunner.Outcome delegate = run(refused, extras(1, 3));
    assertEquals("delegate_failed", delegate.result.get("status"));
    assertEquals(false, map(delegate.result.get("delegate")).get("applied"));
  }

  @Test
  public void failingInferenceDropsPartialTimings() {
    FakeInterpreter interpreter = new FakeInterpreter(ticker);
    interpreter.failOnRun = 3;
    interpreter.runFailure = new BenchFailure(Status.INFERENCE_FAILED, "Node 7 failed to invoke");
    BenchmarkRunner.Outcome outcome = run(interpreter, extras(2, 5));
    assertEquals(Status.INFERENCE_FAILED, outcome.status);
    assertNull(outcome.result.get("latency"));
    assertTrue(interpreter.closed);
  }

  @Test
  public void outOfMemoryIsReportedAsSuch() {
    FakeInterpreter interpreter = new FakeInterpreter(ticker);
    interpreter.failOnRun = 1;
    interpreter.runError = new OutOfMemoryError("Failed to allocate a 268435456 byte allocation");
    BenchmarkRunner.Outcome outcome = run(interpreter, extras(0, 1));
    assertEquals(Status.OUT_OF_MEMORY, outcome.status);
    assertTrue(outcome.message.contains("268435456"));
    assertEquals("out_of_memory", outcome.result.get("status"));
  }

  @Test
  public void invalidExtrasStillNameTheRunAndItsProblems() throws IOException {
    Map<String, Object> extras = extras(1, 0);
    extras.put("delegate", "tpu");
    BenchmarkRunner.Outcome outcome = run(new FakeInterpreter(ticker), extras);
    assertEquals(Status.INVALID_ARGUMENTS, outcome.status);
    assertEquals("run-1", outcome.runId);
    Map<String, Object> config = map(outcome.result.get("config"));
    assertEquals("cpu", config.get("delegate"));
    assertEquals(1, config.get("num_runs"));
    File written = BenchmarkRunner.writeResult(folder.getRoot(), outcome);
    assertEquals(new File(folder.getRoot(), "results/run-1.json"), written);
    String json = new String(Files.readAllBytes(written.toPath()), "UTF-8");
    assertTrue(json, json.contains("\"status\": \"invalid_arguments\""));
    assertTrue(json, json.contains("num_runs must be an integer >= 1"));
  }

  @Test
  public void noRunIdMeansNothingToName() {
    Map<String, Object> extras = extras(1, 1);
    extras.put("run_id", "../escape");
    BenchmarkRunner.Outcome outcome = run(new FakeInterpreter(ticker), extras);
    assertNull(outcome.runId);
    assertTrue(outcome.logLine(null).startsWith("run_id=- status=invalid_arguments message="));
    try {
      BenchmarkRunner.writeResult(folder.getRoot(), outcome);
      throw new AssertionError("wrote a result without a run id");
    } catch (IOException expected) {
      assertTrue(expected.getMessage().contains("run id"));
    }
  }

  @Test
  public void logLineNamesRunStatusAndResult() {
    BenchmarkRunner.Outcome outcome = run(new FakeInterpreter(ticker), extras(0, 1));
    assertEquals(
        "run_id=run-1 status=ok result=/data/data/x/files/results/run-1.json",
        outcome.logLine("/data/data/x/files/results/run-1.json"));
  }

  @Test
  public void qualityGateWritesOneOutputPerInput() throws IOException {
    File inputs = folder.newFolder("q in");
    File outputs = new File(folder.getRoot(), "q out");
    Npy.write(new File(inputs, "b.npy"), NpyArray.ofFloats(new int[] {1, 2, 2, 1}, new float[] {1, 2, 3, 4}));
    Npy.write(new File(inputs, "a.npy"), NpyArray.ofFloats(new int[] {1, 4}, new float[] {-1, 0, 1, 2}));
    Files.write(new File(inputs, "notes.txt").toPath(), new byte[] {1});
    Map<String, Object> extras = extras(0, 1);
    extras.put("quality_inputs_dir", inputs.getPath());
    extras.put("quality_outputs_dir", outputs.getPath());
    BenchmarkRunner.Outcome outcome = run(new FakeInterpreter(ticker), extras);
    assertEquals(outcome.message, Status.OK, outcome.status);
    Map<String, Object> quality = map(outcome.result.get("quality"));
    assertEquals(Arrays.asList("a.npy", "b.npy"), quality.get("files"));
    assertArrayEquals(new float[] {-2, 0, 2, 4}, Npy.read(new File(outputs, "a.npy")).floats(), 0f);
    assertArrayEquals(new float[] {2, 4, 6, 8}, Npy.read(new File(outputs, "b.npy")).floats(), 0f);
    assertFalse(new File(outputs, ".a.npy.tmp").exists());
  }

  @Test
  public void qualityInputOfTheWrongDtypeIsRefused() throws IOException {
    File inputs = folder.newFolder("in");
    Npy.write(new File(inputs, "x.npy"), new NpyArray("uint8", new int[] {4}, new byte[4]));
    Map<String, Object> extras = extras(0, 1);
    extras.put("quality_inputs_dir", inputs.getPath());
    extras.put("quality_outputs_dir", new File(folder.getRoot(), "out").getPath());
    BenchmarkRunner.Outcome outcome = run(new FakeInterpreter(ticker), extras);
    assertEquals(Status.INVALID_ARGUMENTS, outcome.status);
    assertEquals(
        "quality input x.npy is uint8[4] but the model's input is float32[1, 2, 2, 1]",
        outcome.message);
  }
}
