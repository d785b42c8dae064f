/**
 * gRPC server reflection, v1 and v1alpha, so that grpcurl and buf curl work with no proto files.
 * Both versions share one implementation: their messages are identical but for the package.
 */
import {
  create,
  createRegistry,
  type DescExtension,
  type DescFile,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ServerReflectionResponseSchema as ResponseV1,
  type ServerReflection as ServerReflectionV1,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionResponseSchema as ResponseV1alpha,
  type ServerReflection as ServerReflectionV1alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The request shape shared by v1 and v1alpha. */
interface Request {
  readonly messageRequest:
    | {
        readonly case:
          | "fileByFilename"
          | "fileContainingSymbol"
          | "allExtensionNumbersOfType"
          | "listServices";
        readonly value: string;
      }
    | {
        readonly case: "fileContainingExtension";
        readonly value: { readonly containingType: string; readonly extensionNumber: number };
      }
    | { readonly case: undefined; readonly value?: undefined };
}

/** The response shape shared by v1 and v1alpha. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | {
      case: "allExtensionNumbersResponse";
      value: { baseTypeName: string; extensionNumber: number[] };
    }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

// gRPC status codes used in ErrorResponse.
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** Answers reflection requests about the given services and every file they depend on. */
export class ReflectionIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly registry;
  private readonly serviceNames: string[];

  constructor(services: readonly { readonly typeName: string; readonly file: DescFile }[]) {
    for (const s of services) this.addFile(s.file);
    this.registry = createRegistry(...this.files.values());
    this.serviceNames = services.map((s) => s.typeName);
  }

  /** Answers one request; never throws, errors become an ErrorResponse. */
  answer(req: Request): Answer {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: this.serviceNames.map((name) => ({ name })) },
        };
      case "fileByFilename":
        return this.fileAnswer(this.files.get(r.value), `file "${r.value}" not found`);
      case "fileContainingSymbol":
        return this.fileAnswer(this.fileOfSymbol(r.value), `symbol "${r.value}" not found`);
      case "fileContainingExtension": {
        const ext = this.extensionsOf(r.value.containingType).find(
          (e) => e.number === r.value.extensionNumber,
        );
        return this.fileAnswer(ext?.file, "extension not found");
      }
      case "allExtensionNumbersOfType":
        if (!this.registry.getMessage(r.value))
          return error(NOT_FOUND, `type "${r.value}" not found`);
        return {
          case: "allExtensionNumbersResponse",
          value: {
            baseTypeName: r.value,
            extensionNumber: this.extensionsOf(r.value).map((e) => e.number),
          },
        };
      default:
        return error(INVALID_ARGUMENT, "unsupported reflection request");
    }
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.addFile(dep);
  }

  private fileOfSymbol(symbol: string): DescFile | undefined {
    const direct = this.registry.get(symbol);
    if (direct) return direct.file;
    // A method, field or enum value: look up its parent and check the member exists.
    const dot = symbol.lastIndexOf(".");
    const parent = symbol.slice(0, dot);
    const member = symbol.slice(dot + 1);
    const service = this.registry.getService(parent);
    if (service?.methods.some((m) => m.name === member)) return service.file;
    const message = this.registry.getMessage(parent);
    if (message?.fields.some((f) => f.name === member)) return message.file;
    return undefined;
  }

  private extensionsOf(typeName: string): DescExtension[] {
    return [...this.registry].filter(
      (t): t is DescExtension => t.kind === "extension" && t.extendee.typeName === typeName,
    );
  }

  /** The file first, then its transitive dependencies, as serialized FileDescriptorProtos. */
  private fileAnswer(file: DescFile | undefined, notFound: string): Answer {
    if (!file) return error(NOT_FOUND, notFound);
    const ordered: DescFile[] = [];
    const visit = (f: DescFile) => {
      if (ordered.includes(f)) return;
      ordered.push(f);
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return {
      case: "fileDescriptorResponse",
      value: {
        fileDescriptorProto: ordered.map((f) => toBinary(FileDescriptorProtoSchema, f.proto)),
      },
    };
  }
}

function error(errorCode: number, errorMessage: string): Answer {
  return { case: "errorResponse", value: { errorCode, errorMessage } };
}

/** The v1 reflection service over the index. */
export function reflectionV1(index: ReflectionIndex): ServiceImpl<typeof ServerReflectionV1> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield create(ResponseV1, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: index.answer(req),
        });
      }
    },
  };
}

/** The v1alpha reflection service over the index; older grpcurl and grpc tools ask for it. */
export function reflectionV1alpha(
  index: ReflectionIndex,
): ServiceImpl<typeof ServerReflectionV1alpha> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield create(ResponseV1alpha, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: index.answer(req),
        });
      }
    },
  };
}
