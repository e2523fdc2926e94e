import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;

import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.monitoring.Telemetry;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Starts DynamoDB Local listening on 127.0.0.1 only.
 *
 * <p>DynamoDB Local binds every interface and has no host option, so this builds the server the
 * way its own main() does, then sets the host of its Jetty connectors before starting it. Run with
 * Java's single-file source launcher (no compile step):
 *
 * <pre>
 * java -Djava.library.path=LIB -cp "DynamoDBLocal.jar:LIB/*" core/Launcher.java -port 8000 -inMemory
 * </pre>
 *
 * <p>Arguments are DynamoDB Local's own, plus {@code --exit-on-stdin-eof}: exit when standard input
 * closes, so a server started for tests dies with its parent, even when the parent is SIGKILLed.
 * Telemetry is always disabled: this server must send nothing beyond loopback.
 */
public final class Launcher {
    private static final String HOST = "127.0.0.1";
    private static final String EXIT_ON_STDIN_EOF = "--exit-on-stdin-eof";
    private static final String DISABLE_TELEMETRY = "-disableTelemetry";

    private Launcher() {}

    public static void main(String[] argv) throws Exception {
        List<String> args = new ArrayList<>();
        boolean exitOnStdinEof = false;
        for (String arg : argv) {
            if (arg.equals(EXIT_ON_STDIN_EOF)) {
                exitOnStdinEof = true;
            } else {
                args.add(arg);
            }
        }
        if (!args.contains(DISABLE_TELEMETRY)) {
            args.add(DISABLE_TELEMETRY);
        }
        if (exitOnStdinEof) {
            exitOnStdinEof();
        }

        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args.toArray(new String[0]));
        if (proxy == null) {
            fail("DynamoDB Local did not create a server (see its usage above)");
        }
        if (Telemetry.getTelemetry().isPresent()) {
            fail("DynamoDB Local telemetry is enabled; refusing to start");
        }

        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        Connector[] connectors = server.getConnectors();
        if (connectors.length == 0) {
            fail("DynamoDB Local's Jetty server has no connector");
        }
        for (Connector connector : connectors) {
            // Anything but a ServerConnector might listen on every interface: refuse it.
            if (!(connector instanceof ServerConnector serverConnector)) {
                fail("unexpected Jetty connector " + connector.getClass().getName());
                return;
            }
            serverConnector.setHost(HOST);
        }

        proxy.start();
        // DynamoDBProxyServer.start() swallows a failed bind (it prints and stops): exit instead
        // of idling without a listener.
        if (!server.isStarted()) {
            fail("DynamoDB Local did not start (is the port taken?)");
        }
        for (Connector connector : connectors) {
            ServerConnector serverConnector = (ServerConnector) connector;
            System.out.println("DynamoDB Local listening on " + serverConnector.getHost() + ":"
                    + serverConnector.getLocalPort());
        }
        System.out.flush();
        proxy.join();
        System.exit(0);
    }

    private static void exitOnStdinEof() {
        Thread watcher = new Thread(() -> {
            byte[] buffer = new byte[256];
            InputStream in = System.in;
            try {
                while (in.read(buffer) != -1) {
                    // The parent never writes; anything it sends is ignored.
                }
            } catch (IOException e) {
                // A broken stdin means the parent is gone as surely as EOF does.
            }
            System.exit(0);
        }, "exit-on-stdin-eof");
        watcher.setDaemon(true);
        watcher.start();
    }

    private static void fail(String message) {
        System.err.println("Launcher: " + message);
        System.exit(2);
    }
}
