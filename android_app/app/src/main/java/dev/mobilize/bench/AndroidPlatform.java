package dev.mobilize.bench;

import android.content.Context;
import android.content.pm.PackageManager;
import android.os.Build;
import android.os.Debug;
import android.os.PowerManager;
import dev.mobilize.bench.core.MemorySnapshot;
import dev.mobilize.bench.core.Platform;
import dev.mobilize.bench.core.Probes;
import dev.mobilize.bench.core.ThermalStatus;
import java.io.BufferedReader;
import java.io.FileReader;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.tensorflow.lite.TensorFlowLite;

/** The phone's side of the core's probes: memory, thermal status, device and runtime facts. */
final class AndroidPlatform {
  private final Context context;

  AndroidPlatform(Context context) {
    this.context = context.getApplicationContext();
  }

  Platform create() {
    return new Platform(
        Probes.SYSTEM_TICKER,
        Platform.SYSTEM_WALL_CLOCK,
        new Probes.MemoryProbe() {
          @Override
          public MemorySnapshot snapshot() {
            return memory();
          }
        },
        new Probes.ThermalProbe() {
          @Override
          public String status() {
            return thermalStatus();
          }
        },
        new Probes.Facts() {
          @Override
          public Map<String, Object> device() {
            return deviceFacts();
          }

          @Override
          public String runtimeName() {
            return "litert";
          }

          @Override
          public String runtimeVersion() {
            try {
              return TensorFlowLite.runtimeVersion();
            } catch (RuntimeException | UnsatisfiedLinkError e) {
              return null;
            }
          }

          @Override
          public String appVersion() {
            return appVersionName();
          }
        });
  }

  /** VmHWM/VmRSS of this process, its total PSS, and the native heap's allocated bytes. */
  static MemorySnapshot memory() {
    Debug.MemoryInfo info = new Debug.MemoryInfo();
    Debug.getMemoryInfo(info);
    double pssKb = info.getTotalPss();
    double nativeHeapKb = Debug.getNativeHeapAllocatedSize() / 1024.0;
    return MemorySnapshot.fromProcStatus(readProcStatus(), pssKb, nativeHeapKb);
  }

  private static String readProcStatus() {
    StringBuilder text = new StringBuilder();
    try {
      BufferedReader reader = new BufferedReader(new FileReader("/proc/self/status"));
      try {
        String line;
        while ((line = reader.readLine()) != null) {
          text.append(line).append('\n');
        }
      } finally {
        reader.close();
      }
    } catch (IOException e) {
      return ""; // the figures become null in the result
    }
    return text.toString();
  }

  /** PowerManager's thermal status; it exists from API 29, null before. */
  String thermalStatus() {
    if (Build.VERSION.SDK_INT < Build.VERSION_CODES.Q) {
      return null;
    }
    PowerManager power = (PowerManager) context.getSystemService(Context.POWER_SERVICE);
    return power == null ? null : ThermalStatus.label(power.getCurrentThermalStatus());
  }

  static Map<String, Object> deviceFacts() {
    Map<String, Object> device = new LinkedHashMap<>();
    device.put("model", Build.MODEL);
    device.put("manufacturer", Build.MANUFACTURER);
    device.put("board", Build.BOARD);
    device.put(
        "soc",
        Build.VERSION.SDK_INT >= Build.VERSION_CODES.S
            ? Build.SOC_MANUFACTURER + " " + Build.SOC_MODEL
            : Build.HARDWARE);
    device.put("abi", Build.SUPPORTED_ABIS.length > 0 ? Build.SUPPORTED_ABIS[0] : null);
    device.put("sdk", Build.VERSION.SDK_INT);
    device.put("android_version", Build.VERSION.RELEASE);
    // Reading the GL renderer needs a GL context; the harness reads it from SurfaceFlinger.
    device.put("gpu_renderer", null);
    return device;
  }

  @SuppressWarnings("deprecation") // getPackageInfo(String, int): the flags overload is API 33
  String appVersionName() {
    try {
      return context.getPackageManager().getPackageInfo(context.getPackageName(), 0).versionName;
    } catch (PackageManager.NameNotFoundException e) {
      return null;
    }
  }
}
