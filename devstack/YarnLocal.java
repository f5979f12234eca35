// A one-JVM YARN (ResourceManager + NodeManager) and optional HDFS for tests, from Hadoop's minicluster jar.
// devstack/yarn.py compiles and starts it:  java YarnLocal <site.xml> <conf-out-dir> <work-dir> <hdfs-port|0=no HDFS>
// When both are up it writes yarn-site.xml, core-site.xml and hdfs-site.xml into <conf-out-dir> (the client
// HADOOP_CONF_DIR), then <work-dir>/ready (default FS, WebHDFS address) last, and runs until it is signalled.

import java.io.File;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;

public final class YarnLocal {
  public static void main(String[] args) {
    try {
      run(args);
    } catch (Throwable failure) {
      failure.printStackTrace();
      System.exit(1);  // the DataNode's and NodeManager's threads would keep a failed start alive
    }
  }

  private static void run(String[] args) throws Exception {
    File site = new File(args[0]);
    File confOut = new File(args[1]);
    File work = new File(args[2]);
    int hdfsPort = Integer.parseInt(args[3]);

    Configuration base = new Configuration(false);
    base.addResource(new Path(site.getAbsolutePath()));

    MiniDFSCluster dfs = null;
    String defaultFs = "file:///";
    String webHdfs = "";
    if (hdfsPort > 0) {
      Configuration dfsConf = new Configuration();
      dfsConf.addResource(new Path(site.getAbsolutePath()));
      dfs = new MiniDFSCluster.Builder(dfsConf, new File(work, "hdfs"))
          .nameNodePort(hdfsPort).numDataNodes(1).format(true).build();
      dfs.waitActive();
      defaultFs = dfs.getFileSystem().getUri().toString();
      webHdfs = "127.0.0.1:" + dfs.getNameNode().getHttpAddress().getPort();
    }

    YarnConfiguration yarnConf = new YarnConfiguration();
    yarnConf.addResource(new Path(site.getAbsolutePath()));
    yarnConf.set("fs.defaultFS", defaultFs);
    // MiniYARNCluster keeps its NodeManager dirs under ./target/<name>; the launcher runs in <work-dir>.
    MiniYARNCluster yarn = new MiniYARNCluster("yarn-local", 1, 1, 1, 1);
    yarn.init(yarnConf);
    yarn.start();
    if (!yarn.waitForNodeManagersToConnect(60_000)) {
      throw new IllegalStateException("the NodeManager did not register with the ResourceManager within 60 s");
    }

    MiniDFSCluster dfsForHook = dfs;
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      yarn.stop();
      if (dfsForHook != null) {
        dfsForHook.shutdown();
      }
    }));

    confOut.mkdirs();
    writeXml(yarn.getConfig(), new File(confOut, "yarn-site.xml"));
    Configuration core = new Configuration(false);
    core.set("fs.defaultFS", defaultFs);
    writeXml(core, new File(confOut, "core-site.xml"));
    Configuration hdfsSite = new Configuration(false);
    hdfsSite.set("dfs.replication", "1");
    if (!webHdfs.isEmpty()) {
      hdfsSite.set("dfs.namenode.http-address", webHdfs);
    }
    writeXml(hdfsSite, new File(confOut, "hdfs-site.xml"));
    File ready = new File(work, "ready");
    Files.writeString(ready.toPath(), defaultFs + "\n" + webHdfs + "\n");

    Thread.currentThread().join();
  }

  private static void writeXml(Configuration conf, File target) throws Exception {
    File partial = new File(target.getPath() + ".partial");
    try (OutputStream out = new FileOutputStream(partial)) {
      conf.writeXml(out);
    }
    Files.move(partial.toPath(), target.toPath(), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
  }
}
