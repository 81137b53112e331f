// The JavaScript SDK v3 against a running Sluice, driven by tests/python/test_js_sdk.py.
//
// Environment: SLUICE_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, NODE_EXTRA_CA_CERTS
// (the server's CA), STREAM (a fresh stream name) and HANDLER: "default" (the client as
// constructed with no options: HTTP/2 when the server offers it), "http2" (an explicit
// NodeHttp2Handler) or "http1" (NodeHttpHandler).
//
// Prints one JSON line per step ({"step": ..., ...}) and exits non-zero on the first failure,
// so that the Python side can say which step failed and why.
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  PutRecordsCommand,
  ListShardsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  SubscribeToShardCommand,
  DeleteStreamCommand,
} from "@aws-sdk/client-kinesis";
import { NodeHttpHandler, NodeHttp2Handler } from "@smithy/node-http-handler";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const handlerKind = process.env.HANDLER || "default";
const options = {
  endpoint: env("SLUICE_ENDPOINT"),
  region: "us-east-1",
  credentials: { accessKeyId: env("AWS_ACCESS_KEY_ID"), secretAccessKey: env("AWS_SECRET_ACCESS_KEY") },
  maxAttempts: 1,
};
if (handlerKind === "http2") {
  options.requestHandler = new NodeHttp2Handler({ requestTimeout: 30000, sessionTimeout: 30000 });
} else if (handlerKind === "http1") {
  options.requestHandler = new NodeHttpHandler({ requestTimeout: 30000 });
} else if (handlerKind !== "default") {
  throw new Error(`unknown HANDLER ${handlerKind}`);
}
const client = new KinesisClient(options);
const stream = env("STREAM");
const say = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitActive() {
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    if (d.StreamDescriptionSummary.StreamStatus === "ACTIVE") return d.StreamDescriptionSummary;
    await sleep(100);
  }
  throw new Error("stream never became ACTIVE");
}

async function main() {
  await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  const summary = await waitActive();
  say("create", { arn: summary.StreamARN });

  const enc = new TextEncoder();
  const one = await client.send(
    new PutRecordCommand({ StreamName: stream, PartitionKey: "pk", Data: enc.encode("first") }),
  );
  const many = await client.send(
    new PutRecordsCommand({
      StreamName: stream,
      Records: [1, 2, 3].map((i) => ({ PartitionKey: `pk${i}`, Data: enc.encode(`record-${i}`) })),
    }),
  );
  say("put", { shard: one.ShardId, failed: many.FailedRecordCount, encryption: one.EncryptionType });

  const shards = await client.send(new ListShardsCommand({ StreamName: stream }));
  say("list-shards", { shards: shards.Shards.map((s) => s.ShardId) });

  const it = await client.send(
    new GetShardIteratorCommand({
      StreamName: stream,
      ShardId: shards.Shards[0].ShardId,
      ShardIteratorType: "TRIM_HORIZON",
    }),
  );
  const got = await client.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator, Limit: 100 }));
  const dec = new TextDecoder();
  say("get-records", { data: got.Records.map((r) => dec.decode(r.Data)) });

  const reg = await client.send(
    new RegisterStreamConsumerCommand({ StreamARN: summary.StreamARN, ConsumerName: "js-consumer" }),
  );
  const consumerArn = reg.Consumer.ConsumerARN;
  for (let i = 0; i < 100; i++) {
    const c = await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: consumerArn }));
    if (c.ConsumerDescription.ConsumerStatus === "ACTIVE") break;
    await sleep(100);
  }
  const sub = await client.send(
    new SubscribeToShardCommand({
      ConsumerARN: consumerArn,
      ShardId: shards.Shards[0].ShardId,
      StartingPosition: { Type: "TRIM_HORIZON" },
    }),
  );
  const seen = [];
  for await (const event of sub.EventStream) {
    if (event.SubscribeToShardEvent) {
      for (const r of event.SubscribeToShardEvent.Records) seen.push(dec.decode(r.Data));
      if (seen.length >= 4) break;
    } else {
      throw new Error(`unexpected event ${JSON.stringify(Object.keys(event))}`);
    }
  }
  say("subscribe", { data: seen });

  await client.send(new DeleteStreamCommand({ StreamName: stream, EnforceConsumerDeletion: true }));
  say("delete");
}

main()
  .then(() => {
    client.destroy();
    process.exit(0);
  })
  .catch((err) => {
    say("error", { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode });
    process.exit(1);
  });
