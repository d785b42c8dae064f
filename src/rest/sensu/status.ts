/**
 * The bodies of Sensu's GET /health and GET /version, seald's honest equivalents of Sensu's
 * shapes. Sensu reports its etcd cluster; seald's one datastore is its database, so /health
 * lists that as the one member (healthy while it answers) and leaves out what has no
 * counterpart: no raft (a zero Header), no alarms (null, as a healthy Sensu answers), and no
 * PostgresHealth (which Sensu too leaves out when it has no PostgreSQL store). /version has no
 * etcd to report (null), names the Sensu Go version whose API seald reproduces in
 * `sensu_backend` (clients such as the Ansible collection compare it to decide what the backend
 * supports), and seald's own version beside it, in a field Sensu's clients ignore.
 */
import { sealdVersion } from "../../domain/version.js";
import { kubernetesVersionInfo } from "../version.js";

/** The Sensu Go release whose secrets API and clients (sensuctl 6.12) seald is tested against. */
export const sensuApiVersion = "6.12.0";

/** One member of Sensu's ClusterHealth. */
export interface MemberHealth {
  MemberID: number;
  MemberIDHex: string;
  Name: string;
  Err: string;
  Healthy: boolean;
}

/** Sensu's /health body. */
export interface HealthBody {
  Alarms: null;
  ClusterHealth: MemberHealth[];
  Header: { cluster_id: number; member_id: number; raft_term: number };
}

/** The /health body for a database that answers (or not). */
export function healthBody(databaseReady: boolean): HealthBody {
  return {
    Alarms: null,
    ClusterHealth: [
      {
        MemberID: 0,
        MemberIDHex: "0",
        Name: "database",
        Err: databaseReady ? "" : "database unavailable",
        Healthy: databaseReady,
      },
    ],
    Header: { cluster_id: 0, member_id: 0, raft_term: 0 },
  };
}

/**
 * The /version body: Sensu's fields, seald's own version beside them, and Kubernetes' version.Info
 * (see src/rest/version.ts: kubectl asks the same path).
 */
export function versionBody() {
  return {
    etcd: null,
    sensu_backend: sensuApiVersion,
    seald: sealdVersion,
    ...kubernetesVersionInfo(),
  };
}
