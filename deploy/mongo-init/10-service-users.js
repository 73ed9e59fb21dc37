// One MongoDB user per service, each with rights on its own database only (plus the shared
// <prefix>platform database, where every service writes its heartbeat), and one for dcgctl
// (backup/restore: every database). Run by the mongo image once, when it initialises an EMPTY
// data volume (/docker-entrypoint-initdb.d), as the root user; passwords come from the
// environment docker-compose.yml gives the mongo container. Rotating a password later:
// docs/security.md (db.changeUserPassword, then the service's MONGO_*_PASSWORD).
const prefix = process.env.DB_PREFIX || "dcg_";
const admin = db.getSiblingDB("admin");
const services = {
  intake: "MONGO_INTAKE_PASSWORD",
  dispatch: "MONGO_DISPATCH_PASSWORD",
  coordination: "MONGO_COORDINATION_PASSWORD",
  scoring: "MONGO_SCORING_PASSWORD",
  participation: "MONGO_PARTICIPATION_PASSWORD",
  gateway: "MONGO_GATEWAY_PASSWORD",
};
function password(variable) {
  const value = process.env[variable];
  if (!value) throw new Error(variable + " is not set: refusing to create a user without a password");
  return value;
}
for (const [service, variable] of Object.entries(services)) {
  admin.createUser({
    user: service,
    pwd: password(variable),
    roles: [{ role: "readWrite", db: prefix + service }, { role: "readWrite", db: prefix + "platform" }],
  });
}
admin.createUser({
  user: "dcgctl",
  pwd: password("MONGO_DCGCTL_PASSWORD"),
  roles: [{ role: "readWriteAnyDatabase", db: "admin" }],
});
