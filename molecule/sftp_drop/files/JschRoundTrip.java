// The vendor's SFTP client family: JSch (Debian's libjsch-java), with the library's own
// algorithm offer. Logs in with a key, uploads a file, downloads it again and compares.
// Prints what the key exchange chose ("kex: ..." lines of JSch's logger) and one result line:
// ROUNDTRIP-OK, or REFUSED <JSch's message>. Run with: java -cp jsch.jar JschRoundTrip.java
// HOST USER KEY REMOTE-PATH
import com.jcraft.jsch.ChannelSftp;
import com.jcraft.jsch.JSch;
import com.jcraft.jsch.JSchException;
import com.jcraft.jsch.Logger;
import com.jcraft.jsch.Session;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

public class JschRoundTrip {
    public static void main(String[] args) throws Exception {
        String host = args[0], user = args[1], key = args[2], remote = args[3];
        JSch.setLogger(new Logger() {
            public boolean isEnabled(int level) { return level >= Logger.INFO; }
            public void log(int level, String message) {
                if (message.startsWith("kex: ")) System.out.println(message);
            }
        });
        JSch jsch = new JSch();
        jsch.addIdentity(key);
        Session session = jsch.getSession(user, host, 22);
        session.setConfig("StrictHostKeyChecking", "no");
        session.setConfig("PreferredAuthentications", "publickey");
        try {
            session.connect(20000);
        } catch (JSchException error) {
            System.out.println("REFUSED " + error.getMessage());
            return;
        }
        System.out.println("kex: host key algorithm: " + session.getHostKey().getType());
        ChannelSftp sftp = (ChannelSftp) session.openChannel("sftp");
        sftp.connect(20000);
        byte[] payload = ("jsch " + remote + "\n").getBytes(StandardCharsets.UTF_8);
        sftp.put(new ByteArrayInputStream(payload), remote);
        ByteArrayOutputStream back = new ByteArrayOutputStream();
        sftp.get(remote, back);
        sftp.disconnect();
        session.disconnect();
        System.out.println(Arrays.equals(payload, back.toByteArray()) ? "ROUNDTRIP-OK" : "ROUNDTRIP-DIFFERS");
    }
}
