// Starts the real verdaccio (its own programmatic entry point) with the
// configuration file given as argv[2] on 127.0.0.1, port 0, and prints
// "listening on 127.0.0.1:PORT" once bound. It exits when its standard
// input closes (the test dropped it).
const { runServer } = require('verdaccio');

(async () => {
  const app = await runServer(process.argv[2]);
  const server = app.listen(0, '127.0.0.1', () => {
    const { address, port } = server.address();
    process.stdout.write(`listening on ${address}:${port}\n`);
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
})().catch((e) => {
  process.stderr.write(`verdaccio failed: ${e && e.stack}\n`);
  process.exit(1);
});
