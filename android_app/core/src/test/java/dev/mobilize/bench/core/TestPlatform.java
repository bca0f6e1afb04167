package dev.mobilize.bench.core;

import java.util.LinkedHashMap;
import java.util.Map;

/** A platform with fixed facts, memory figures and a thermal status that can be changed. */
final class TestPlatform {
  private TestPlatform() {}

  static final String[] thermal = {"none"};

  static Platform create(FakeTicker ticker) {
    return new Platform(
        ticker,
        new Platform.WallClock() {
          @Override
          public long currentTimeMillis() {
            return 1_795_000_000_000L; // 2026-11-18T...Z: a fixed instant
          }
        },
        new Probes.MemoryProbe() {
          @Override
          public MemorySnapshot snapshot() {
            return MemorySnapshot.fromProcStatus(
                "Name:\tdev.mobilize.bench\nVmHWM:\t  181234 kB\nVmRSS:\t  170000 kB\n",
                95000.0,
                40000.0);
          }
        },
        new Probes.ThermalProbe() {
          @Override
          public String status() {
            return thermal[0];
          }
        },
        new Probes.Facts() {
          @Override
          public Map<String, Object> device() {
            Map<String, Object> device = new LinkedHashMap<>();
            device.put("model", "Pixel 8");
            device.put("manufacturer", "Google");
            device.put("board", "shiba");
            device.put("soc", "Google Tensor G3");
            device.put("abi", "arm64-v8a");
            device.put("sdk", 34);
            device.put("android_version", "14");
            device.put("gpu_renderer", "Mali-G715");
            return device;
          }

          @Override
          public String runtimeName() {
            return "litert";
          }

          @Override
          public String runtimeVersion() {
            return "1.4.0";
          }

          @Override
          public String appVersion() {
            return BenchContract.APP_VERSION_NAME;
          }
        });
  }
}
