// Runs a list of Blob Storage operations with the JavaScript clients (@azure/storage-blob,
// @azure/identity) and prints one JSON result per operation: status, error code, the
// response headers and the raw body of the last HTTP response the operation made.
//
// Input (stdin, JSON): {"accountUrl", "clientId", "operations": [...]}; the token comes
// from ManagedIdentityCredential (IMDS at AZURE_POD_IDENTITY_AUTHORITY_HOST); TLS trust
// from NODE_EXTRA_CA_CERTS. The operation list and the comparison live in
// blob_reference_ops.py; this file only maps each operation kind to the client call.

import { createDefaultHttpClient } from "@azure/core-rest-pipeline";
import { ManagedIdentityCredential } from "@azure/identity";
import { BlobServiceClient, newPipeline } from "@azure/storage-blob";
import { createHash } from "node:crypto";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => { text += chunk; });
  process.stdin.on("end", () => resolve(text));
}));

// An HttpClient that remembers the last response (status, headers, body text).
const inner = createDefaultHttpClient();
let last = null;
const httpClient = {
  async sendRequest(request) {
    const response = await inner.sendRequest(request);
    last = {
      status: response.status,
      headers: Object.fromEntries([...response.headers].map(([k, v]) => [k.toLowerCase(), v])),
      body: response.bodyAsText ?? null,
    };
    return response;
  },
};

function client(credential) {
  const pipeline = newPipeline(credential, { retryOptions: { maxTries: 1 } });
  // The pipeline takes a v1 (core-http) client in its options; a core-rest-pipeline client,
  // which this recorder wraps, is what it keeps in _coreHttpClient once converted.
  pipeline._coreHttpClient = httpClient;
  return new BlobServiceClient(input.accountUrl, pipeline);
}

const credential = new ManagedIdentityCredential({ clientId: input.clientId });
const vaultToken = await credential.getToken("https://vault.azure.net/.default");
const clients = {
  default: client(credential),
  // A token for another audience (Key Vault), as a misconfigured application would send.
  wrong_audience: client({ getToken: async () => vaultToken }),
};
let service = clients.default;

// The body's MD5 ("right"), another body's ("wrong"), or 3 bytes ("short").
function md5(text, kind) {
  if (kind === "short") return new Uint8Array(Buffer.from("abc"));
  const digest = createHash("md5").update(kind === "wrong" ? text + "!" : text).digest();
  return new Uint8Array(digest);
}

async function conditions(op) {
  const cond = op.conditions;
  if (!cond) return undefined;
  const out = {};
  let current;
  if (Object.values(cond).some((v) => v === "etag" || v === "last_modified")) {
    current = await service.getContainerClient(op.container).getBlobClient(op.blob).getProperties();
  }
  const date = (v) => (v === "last_modified" ? current.lastModified : new Date(v));
  if (cond.if_match) out.ifMatch = cond.if_match === "etag" ? current.etag : cond.if_match;
  if (cond.if_none_match) {
    out.ifNoneMatch = cond.if_none_match === "etag" ? current.etag : cond.if_none_match;
  }
  if (cond.if_modified_since) out.ifModifiedSince = date(cond.if_modified_since);
  if (cond.if_unmodified_since) out.ifUnmodifiedSince = date(cond.if_unmodified_since);
  if (cond.if_tags) out.tagConditions = cond.if_tags;
  return out;
}

async function firstPage(iterator) {
  for await (const page of iterator) return page;
  return null;
}

async function run(op) {
  const container = op.container ? service.getContainerClient(op.container) : null;
  const blob = op.blob ? container.getBlockBlobClient(op.blob) : null;
  switch (op.op) {
    case "create_container": return container.create();
    case "delete_container": return container.delete();
    case "container_properties": return container.getProperties();
    case "list_containers":
      return firstPage(service.listContainers({ prefix: op.prefix, includeMetadata: true }).byPage());
    case "upload": {
      const options = {
        metadata: op.metadata,
        tags: op.tags,
        blobHTTPHeaders: { blobContentType: op.content_type },
        conditions: await conditions(op),
      };
      if (op.md5) options.blobHTTPHeaders.blobContentMD5 = md5(op.data, op.md5);
      return blob.upload(op.data, Buffer.byteLength(op.data), options);
    }
    case "properties": return blob.getProperties({ conditions: await conditions(op) });
    case "download": {
      const response = await blob.download(0, undefined, { conditions: await conditions(op) });
      const chunks = [];
      for await (const chunk of response.readableStreamBody) chunks.push(chunk);
      last.body = Buffer.concat(chunks).toString("utf8");
      return response;
    }
    case "delete_blob": return blob.delete({ conditions: await conditions(op) });
    case "set_tags": return blob.setTags(op.tags);
    case "get_tags": return blob.getTags();
    case "list_flat":
      return firstPage(container.listBlobsFlat({
        prefix: op.prefix,
        includeMetadata: (op.include ?? []).includes("metadata"),
        includeTags: (op.include ?? []).includes("tags"),
      }).byPage());
    case "list_hierarchy":
      return firstPage(container.listBlobsByHierarchy(op.delimiter, {
        prefix: op.prefix,
        includeMetadata: (op.include ?? []).includes("metadata"),
      }).byPage({ maxPageSize: op.max_results }));
    case "find_container": return firstPage(container.findBlobsByTags(op.where).byPage());
    case "find_account": return firstPage(service.findBlobsByTags(op.where).byPage());
    default: throw new Error(`unknown operation ${op.op}`);
  }
}

const results = [];
for (const op of input.operations) {
  last = null;
  service = clients[op.credential ?? "default"];
  try {
    await run(op);
    results.push({ id: op.id, ...last });
  } catch (error) {
    if (last === null || error.statusCode === undefined) {
      results.push({ id: op.id, status: null, headers: {}, body: null, exception: String(error) });
    } else {
      results.push({ id: op.id, ...last });
    }
  }
}
process.stdout.write(JSON.stringify(results));
