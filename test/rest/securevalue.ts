/** A Grafana SecureValue request body, as the Grafana tests send them. */
export function secureValue(
  name: string,
  spec: Record<string, unknown>,
  metadata: Record<string, unknown> = {},
) {
  return {
    apiVersion: "secret.grafana.app/v1beta1",
    kind: "SecureValue",
    metadata: { name, ...metadata },
    spec,
  };
}
