// The console's pages. Each returns {title, el, refresh, errorBox}: `el` is built once (forms
// keep what the user typed), `refresh` re-reads the API and updates the data parts in place;
// the shell calls it on a timer.

import { call } from "./api.js";
import {
  badge, field, h, input, onSubmit, replace, select, setOptions, showError, splitList, syncRows, table,
} from "./dom.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const mono = (s) => h("span.mono", {}, s ?? "");
const td = (...c) => h("td", {}, ...c);
const errorBox = () => h("div.page-errors");
const portsText = (ports) => (ports || []).map((p) => `${p.client_port}→${p.server_port}/${p.protocol || "TCP"}`).join(", ");
const errorsText = (errors) => (errors || []).map((e) => `${e.error_code || e.code}: ${e.error_message || e.message}`).join("; ");

function number(value) {
  const s = String(value ?? "").trim();
  return /^-?\d+$/.test(s) ? Number(s) : s;
}

function props(pairs) {
  return h("dl.props", {}, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "")]));
}

function checkbox(name, checked = false) {
  return h("input", { type: "checkbox", name, checked });
}

function textarea(name, attrs = {}) {
  return h("textarea", { name, spellcheck: "false", ...attrs });
}

function markDirty(el) {
  el.addEventListener("input", () => { el.dataset.dirty = "1"; });
}

/** Reads the network inventory for the selects of the create forms. */
async function inventory() {
  const [vpcs, subnets, ports] = await Promise.all([
    call("GET", "/vpcs", { query: { limit: 1000 } }),
    call("GET", "/subnets", { query: { limit: 1000 } }),
    call("GET", "/ports", { query: { limit: 1000 } }),
  ]);
  return { vpcs: vpcs.vpcs || [], subnets: subnets.subnets || [], ports: ports.ports || [] };
}

const vpcOptions = (inv) => [["", "Choose a VPC"], ...inv.vpcs.map((v) => [v.id, `${v.name || v.id} (${v.cidr})`])];

// ---------------------------------------------------------------------------------- services

export function services({ navigate, announce }) {
  const list = table("Endpoint services of this project", ["Name", "Status", "Type", "Approval", "Ports", "Connections", "Created"]);
  const vpc = select("vpc_id", [["", "Choose a VPC"]], { required: true });
  const port = select("port_id", [["", "Choose a backend port"]], { required: true });
  const mappings = h("div.mappings");
  let rows = 0;
  const addMapping = (client = "", server = "") => {
    rows += 1;
    const row = h("div.mapping", {},
      field(`Client port ${rows}`, input("client_port", { value: client, inputmode: "numeric" })),
      field(`Server port ${rows}`, input("server_port", { value: server, inputmode: "numeric" })),
      field(`Protocol ${rows}`, select("protocol", [["TCP", "TCP"]])),
      h("button.secondary", { type: "button", "aria-label": `Remove port mapping ${rows}`, onclick: () => { row.remove(); } }, "Remove"));
    mappings.append(row);
  };
  addMapping("80", "8080");
  const form = h("form", { method: "post", novalidate: true, "aria-label": "Create endpoint service" },
    h("div.grid", {},
      field("Service name", input("service_name", { maxlength: 16 }), "Up to 16 letters, digits, _ or -; optional"),
      field("VPC", vpc),
      field("Backend port", port, "A port of this project in the VPC"),
      field("Server type", select("server_type", [["VM", "VM (compute NIC)"], ["LB", "LB (load balancer)"], ["VIP", "VIP (virtual IP)"]])),
      field("TCP proxy", select("tcp_proxy", [["close", "close"], ["toa_open", "toa_open"], ["proxy_open", "proxy_open"], ["open", "open"]])),
      field("Description", input("description", { maxlength: 128 })),
      field("Require approval of each connection", checkbox("approval_enabled", true))),
    h("h3", {}, "Port mappings"),
    mappings,
    h("div.actions", {},
      h("button.secondary", { type: "button", onclick: () => addMapping() }, "Add port mapping"),
      h("button", { type: "submit" }, "Create service")));
  onSubmit(form, async (data) => {
    const clients = data.getAll("client_port");
    const servers = data.getAll("server_port");
    const protocols = data.getAll("protocol");
    const body = {
      vpc_id: data.get("vpc_id"),
      port_id: data.get("port_id"),
      server_type: data.get("server_type"),
      tcp_proxy: data.get("tcp_proxy"),
      approval_enabled: data.get("approval_enabled") !== null,
      ports: clients.map((c, i) => ({ client_port: number(c), server_port: number(servers[i]), protocol: protocols[i] })),
    };
    const name = String(data.get("service_name") || "").trim();
    if (name) body.service_name = name;
    const description = String(data.get("description") || "");
    if (description) body.description = description;
    const svc = await call("POST", "/vpc-endpoint-services", { body });
    announce(`Service ${svc.service_name} created`);
    navigate(`#/services/${svc.id}`);
  });
  let inv = null;
  const syncPorts = () => {
    if (!inv) return;
    const nets = new Set(inv.subnets.filter((s) => s.vpc_id === vpc.value).map((s) => s.id));
    const ports = inv.ports.filter((p) => nets.has(p.network_id));
    setOptions(port, [["", ports.length ? "Choose a backend port" : "No port in this VPC"],
      ...ports.map((p) => [p.id, `${p.name || p.id} ${((p.fixed_ips || [])[0] || {}).ip_address || ""} ${p.device_owner || ""}`.trim()])]);
  };
  vpc.addEventListener("change", syncPorts);
  const errors = errorBox();
  const create = h("details.panel", {}, h("summary", {}, "Create endpoint service"), form);
  create.addEventListener("toggle", async () => {
    if (!create.open) return;
    try {
      inv = await inventory();
      setOptions(vpc, vpcOptions(inv));
      syncPorts();
    } catch {
      // the next refresh shows the error
    }
  });
  const el = h("div", {},
    h("h1", {}, "Endpoint services"),
    errors,
    list.el,
    create);
  return {
    title: "Endpoint services",
    el,
    errorBox: errors,
    async refresh() {
      // The network inventory feeds only the create form: read while the form is open.
      const [data, inventoryNow] = await Promise.all([
        call("GET", "/vpc-endpoint-services", { query: { limit: 1000 } }),
        inv === null || create.open ? inventory() : inv,
      ]);
      inv = inventoryNow;
      setOptions(vpc, vpcOptions(inv));
      syncPorts();
      syncRows(list.tbody, data.endpoint_services || [], (s) => s.id, (s) => h("tr", {},
        td(h("a", { href: `#/services/${s.id}` }, s.service_name || s.id), h("br"), mono(s.id)),
        td(badge(s.status)),
        td(s.server_type),
        td(s.approval_enabled ? "required" : "automatic"),
        td(portsText(s.ports)),
        td(String(s.connection_count ?? 0)),
        td(s.created_at)), "No endpoint services yet.", 7);
    },
  };
}

export function serviceDetail({ params: [id], navigate, announce }) {
  const summary = h("div");
  const errors = errorBox();
  const conns = table("Connections (endpoints of other tenants)", ["Endpoint", "Account (domain)", "Status", "Description", "Actions"]);
  const perms = table("Permissions (who may connect)", ["Permission", "Type", "Created", "Actions"]);
  const connBox = h("div");
  const permBox = h("div");
  const act = async (action, endpoint) => {
    replace(connBox);
    try {
      await call("POST", `/vpc-endpoint-services/${id}/connections/action`, { body: { action, endpoints: [endpoint] } });
      announce(`Connection ${endpoint} ${action === "receive" ? "accepted" : "rejected"}`);
      await page.refresh();
    } catch (err) {
      replace(connBox, h("p.error", { role: "alert" }, `${err.code}: ${err.msg}`));
    }
  };
  const permForm = h("form.inline-form", { method: "post", novalidate: true, "aria-label": "Add permission" },
    field("Permission", input("permissions", { placeholder: "iam:domain::<domain id> or *" })),
    h("button", { type: "submit" }, "Add permission"));
  onSubmit(permForm, async (data) => {
    await call("POST", `/vpc-endpoint-services/${id}/permissions/action`, {
      body: { action: "add", permissions: [String(data.get("permissions")).trim()] },
    });
    permForm.reset();
    announce("Permission added");
    await page.refresh();
  });
  const removePerm = async (p) => {
    replace(permBox);
    try {
      await call("POST", `/vpc-endpoint-services/${id}/permissions/action`, {
        body: { action: "remove", permissions: [p.permission], permission_type: p.permission_type },
      });
      announce("Permission removed");
      await page.refresh();
    } catch (err) {
      replace(permBox, h("p.error", { role: "alert" }, `${err.code}: ${err.msg}`));
    }
  };
  const deleteButton = h("button.danger", { type: "button" }, "Delete service");
  const deleteBox = h("div");
  deleteButton.addEventListener("click", async () => {
    if (!window.confirm("Delete this endpoint service?")) return;
    try {
      await call("DELETE", `/vpc-endpoint-services/${id}`);
      announce("Service deleted");
      navigate("#/services");
    } catch (err) {
      replace(deleteBox, h("p.error", { role: "alert" }, `${err.code}: ${err.msg}`));
    }
  });
  const title = h("h1", {}, "Endpoint service");
  const el = h("div", {},
    h("p", {}, h("a", { href: "#/services" }, "← Endpoint services")),
    title, errors,
    h("section.panel", { "aria-label": "Service details" }, summary),
    h("h2", {}, "Connections"), connBox, conns.el,
    h("h2", {}, "Permissions"), permBox, perms.el,
    h("section.panel", { "aria-label": "Add permission" }, permForm),
    h("div.actions", {}, deleteButton), deleteBox);
  const page = {
    title: "Endpoint service",
    el,
    errorBox: errors,
    async refresh() {
      const [s, c, p] = await Promise.all([
        call("GET", `/vpc-endpoint-services/${id}`),
        call("GET", `/vpc-endpoint-services/${id}/connections`, { query: { limit: 1000 } }),
        call("GET", `/vpc-endpoint-services/${id}/permissions`, { query: { limit: 500 } }),
      ]);
      replace(title, `Endpoint service ${s.service_name || s.id}`);
      const sig = JSON.stringify(s);
      if (summary.dataset.sig !== sig) {
        summary.dataset.sig = sig;
        replace(summary, props([
          ["Name", mono(s.service_name)], ["ID", mono(s.id)], ["Status", badge(s.status)],
          ["Error", errorsText(s.error) || "none"],
          ["Server type", s.server_type], ["VPC", mono(s.vpc_id)], ["Backend port", mono(s.port_id)],
          ["Approval", s.approval_enabled ? "required" : "automatic"], ["TCP proxy", s.tcp_proxy],
          ["Port mappings", portsText(s.ports)], ["Description", s.description || ""],
          ["Created", s.created_at], ["Updated", s.updated_at],
        ]));
      }
      syncRows(conns.tbody, c.connections || [], (x) => x.id, (x) => {
        const desc = input("description", { value: x.description || "", maxlength: 128, "aria-label": `Description of connection ${x.id}` });
        markDirty(desc);
        const descForm = h("form.inline-form", { method: "post", novalidate: true }, desc, h("button.secondary", { type: "submit" }, "Save"));
        onSubmit(descForm, async (data) => {
          await call("PUT", `/vpc-endpoint-services/${id}/connections/description`, {
            body: { connections: [{ id: x.id, description: String(data.get("description")) }] },
          });
          delete desc.dataset.dirty;
          announce("Description saved");
          await page.refresh();
        });
        const canAccept = x.status === "pendingAcceptance" || x.status === "rejected";
        const canReject = x.status === "pendingAcceptance" || x.status === "accepted";
        return h("tr", {},
          td(mono(x.id), h("br"), h("small.hint", {}, `marker ${x.marker_id}`)),
          td(mono(x.domain_id)),
          td(badge(x.status), x.error && x.error.length ? h("p.error", {}, errorsText(x.error)) : null),
          td(descForm),
          td(h("div.actions", {},
            h("button", { type: "button", disabled: !canAccept, "aria-label": `Accept connection ${x.id}`, onclick: () => act("receive", x.id) }, "Accept"),
            h("button.danger", { type: "button", disabled: !canReject, "aria-label": `Reject connection ${x.id}`, onclick: () => act("reject", x.id) }, "Reject"))));
      }, "No connections yet.", 5);
      syncRows(perms.tbody, p.permissions || [], (x) => x.id, (x) => h("tr", {},
        td(mono(x.permission)), td(x.permission_type), td(x.created_at),
        td(h("button.danger", { type: "button", "aria-label": `Remove permission ${x.permission}`, onclick: () => removePerm(x) }, "Remove"))),
      "Only this account may connect.", 4);
    },
  };
  return page;
}

// --------------------------------------------------------------------------------- endpoints

export function endpoints({ navigate, announce }) {
  const list = table("Endpoints of this project", ["Endpoint", "Service", "Status", "Address", "DNS names", "VPC", "Created"]);
  const vpc = select("vpc_id", [["", "Choose a VPC"]], { required: true });
  const subnet = select("subnet_id", [["", "Choose a subnet"]], { required: true });
  const form = h("form", { method: "post", novalidate: true, "aria-label": "Create endpoint" },
    h("div.grid", {},
      field("Service name or id", input("endpoint_service_name", { required: true }), "The full name, e.g. region.name.id, or the service's id"),
      field("VPC", vpc),
      field("Subnet", subnet),
      field("Address (port_ip)", input("port_ip", { inputmode: "decimal" }), "Optional; a free address of the subnet"),
      field("Description", input("description", { maxlength: 128 })),
      field("Create a DNS name", checkbox("enable_dns", true)),
      field("Whitelist", textarea("whitelist"), "IPv4 addresses or CIDRs, one per line or comma-separated"),
      field("Enforce the whitelist", checkbox("enable_whitelist"))),
    h("div.actions", {}, h("button", { type: "submit" }, "Create endpoint")));
  onSubmit(form, async (data) => {
    const target = String(data.get("endpoint_service_name") || "").trim();
    let serviceId = target;
    if (!UUID.test(target)) {
      try {
        const found = await call("GET", "/vpc-endpoint-services/describe", { query: { endpoint_service_name: target } });
        serviceId = found.id;
      } catch (err) {
        err.msg = `endpoint_service_name: ${err.msg}`;
        throw err;
      }
    }
    const body = {
      endpoint_service_id: serviceId,
      vpc_id: data.get("vpc_id"),
      subnet_id: data.get("subnet_id"),
      enable_dns: data.get("enable_dns") !== null,
    };
    const ip = String(data.get("port_ip") || "").trim();
    if (ip) body.port_ip = ip;
    const description = String(data.get("description") || "");
    if (description) body.description = description;
    const whitelist = splitList(data.get("whitelist"));
    if (whitelist.length) body.whitelist = whitelist;
    if (data.get("enable_whitelist") !== null) body.enable_whitelist = true;
    const ep = await call("POST", "/vpc-endpoints", { body });
    announce(`Endpoint ${ep.id} created`);
    navigate(`#/endpoints/${ep.id}`);
  });
  let inv = null;
  const syncSubnets = () => {
    if (!inv) return;
    const subs = inv.subnets.filter((s) => s.vpc_id === vpc.value);
    setOptions(subnet, [["", subs.length ? "Choose a subnet" : "No subnet in this VPC"], ...subs.map((s) => [s.id, `${s.name || s.id} (${s.cidr})`])]);
  };
  vpc.addEventListener("change", syncSubnets);
  const errors = errorBox();
  const create = h("details.panel", {}, h("summary", {}, "Create endpoint"), form);
  create.addEventListener("toggle", async () => {
    if (!create.open) return;
    try {
      inv = await inventory();
      setOptions(vpc, vpcOptions(inv));
      syncSubnets();
    } catch {
      // the next refresh shows the error
    }
  });
  const el = h("div", {}, h("h1", {}, "Endpoints"), errors, list.el, create);
  return {
    title: "Endpoints",
    el,
    errorBox: errors,
    async refresh() {
      const [data, inventoryNow] = await Promise.all([
        call("GET", "/vpc-endpoints", { query: { limit: 1000 } }),
        inv === null || create.open ? inventory() : inv,
      ]);
      inv = inventoryNow;
      setOptions(vpc, vpcOptions(inv));
      syncSubnets();
      syncRows(list.tbody, data.endpoints || [], (e) => e.id, (e) => h("tr", {},
        td(h("a", { href: `#/endpoints/${e.id}` }, mono(e.id))),
        td(mono(e.endpoint_service_name)),
        td(badge(e.status), e.error && e.error.length ? h("p.error", {}, errorsText(e.error)) : null),
        td(mono(e.ip)),
        td((e.dns_names || []).map((d) => h("div.mono", {}, d))),
        td(mono(e.vpc_id)),
        td(e.created_at)), "No endpoints yet.", 7);
    },
  };
}

export function endpointDetail({ params: [id], navigate, announce }) {
  const summary = h("div");
  const errors = errorBox();
  const whitelist = textarea("whitelist");
  const enable = checkbox("enable_whitelist");
  markDirty(whitelist);
  markDirty(enable);
  const form = h("form", { method: "post", novalidate: true, "aria-label": "Whitelist" },
    field("Whitelist", whitelist, "IPv4 addresses or CIDRs, one per line or comma-separated (at most 20)"),
    field("Enforce the whitelist", enable),
    h("div.actions", {}, h("button", { type: "submit" }, "Save whitelist")));
  onSubmit(form, async (data) => {
    await call("PUT", `/vpc-endpoints/${id}`, {
      body: { whitelist: splitList(data.get("whitelist")), enable_whitelist: data.get("enable_whitelist") !== null },
    });
    delete whitelist.dataset.dirty;
    delete enable.dataset.dirty;
    announce("Whitelist saved");
    await page.refresh();
  });
  const deleteBox = h("div");
  const deleteButton = h("button.danger", { type: "button" }, "Delete endpoint");
  deleteButton.addEventListener("click", async () => {
    if (!window.confirm("Delete this endpoint?")) return;
    try {
      await call("DELETE", `/vpc-endpoints/${id}`);
      announce("Endpoint deleted");
      navigate("#/endpoints");
    } catch (err) {
      replace(deleteBox, h("p.error", { role: "alert" }, `${err.code}: ${err.msg}`));
    }
  });
  const el = h("div", {},
    h("p", {}, h("a", { href: "#/endpoints" }, "← Endpoints")),
    h("h1", {}, "Endpoint"), errors,
    h("section.panel", { "aria-label": "Endpoint details" }, summary),
    h("h2", {}, "Whitelist"),
    h("section.panel", {}, form),
    h("div.actions", {}, deleteButton), deleteBox);
  const page = {
    title: "Endpoint",
    el,
    errorBox: errors,
    async refresh() {
      const e = await call("GET", `/vpc-endpoints/${id}`);
      const sig = JSON.stringify(e);
      if (summary.dataset.sig !== sig) {
        summary.dataset.sig = sig;
        replace(summary, props([
          ["ID", mono(e.id)], ["Status", badge(e.status)],
          ["Error reason", errorsText(e.error) || "none"],
          ["Service", mono(e.endpoint_service_name)], ["Service ID", mono(e.endpoint_service_id)],
          ["Address", mono(e.ip)],
          ["DNS names", (e.dns_names || []).length ? e.dns_names.map((d) => h("div.mono", {}, d)) : "none"],
          ["VPC", mono(e.vpc_id)], ["Subnet", mono(e.subnet_id)],
          ["Whitelist", e.enable_whitelist ? `enforced: ${(e.whitelist || []).join(", ") || "(empty: nobody)"}` : "not enforced"],
          ["Marker id", String(e.marker_id ?? "")], ["Description", e.description || ""],
          ["Created", e.created_at], ["Updated", e.updated_at],
        ]));
      }
      if (!whitelist.dataset.dirty && document.activeElement !== whitelist) whitelist.value = (e.whitelist || []).join("\n");
      if (!enable.dataset.dirty && document.activeElement !== enable) enable.checked = Boolean(e.enable_whitelist);
    },
  };
  return page;
}

// ----------------------------------------------------------------------------------- network

export function network({ announce }) {
  const vpcs = table("VPCs", ["Name", "ID", "CIDR", "Status"]);
  const subnets = table("Subnets", ["Name", "ID", "CIDR", "Gateway", "VPC"]);
  const ports = table("Ports", ["Name", "ID", "Address", "Device owner", "Subnet"]);
  const vpcForm = h("form", { method: "post", novalidate: true, "aria-label": "Create VPC" },
    h("div.grid", {}, field("VPC name", input("name")), field("VPC CIDR", input("cidr", { value: "10.0.0.0/16" }))),
    h("div.actions", {}, h("button", { type: "submit" }, "Create VPC")));
  onSubmit(vpcForm, async (data) => {
    await call("POST", "/vpcs", { body: { vpc: { name: data.get("name"), cidr: data.get("cidr") } } });
    vpcForm.reset();
    announce("VPC created");
    await page.refresh();
  });
  const subnetVpc = select("vpc_id", [["", "Choose a VPC"]]);
  const subnetForm = h("form", { method: "post", novalidate: true, "aria-label": "Create subnet" },
    h("div.grid", {},
      field("VPC", subnetVpc), field("Subnet name", input("name")),
      field("Subnet CIDR", input("cidr", { value: "10.0.1.0/24" })), field("Gateway IP", input("gateway_ip", { value: "10.0.1.1" }))),
    h("div.actions", {}, h("button", { type: "submit" }, "Create subnet")));
  onSubmit(subnetForm, async (data) => {
    await call("POST", "/subnets", {
      body: { subnet: { vpc_id: data.get("vpc_id"), name: data.get("name"), cidr: data.get("cidr"), gateway_ip: data.get("gateway_ip") } },
    });
    announce("Subnet created");
    await page.refresh();
  });
  const portSubnet = select("network_id", [["", "Choose a subnet"]]);
  const portForm = h("form", { method: "post", novalidate: true, "aria-label": "Create port" },
    h("div.grid", {},
      field("Subnet", portSubnet), field("Port name", input("name")),
      field("Device owner", select("device_owner", [["", "(none: a VM NIC)"], ["neutron:LOADBALANCERV2", "neutron:LOADBALANCERV2 (LB)"], ["neutron:VIP_PORT", "neutron:VIP_PORT (VIP)"]])),
      field("Fixed IP", input("ip_address"), "Optional")),
    h("div.actions", {}, h("button", { type: "submit" }, "Create port")));
  onSubmit(portForm, async (data) => {
    const port = { network_id: data.get("network_id") };
    if (data.get("name")) port.name = data.get("name");
    if (data.get("device_owner")) port.device_owner = data.get("device_owner");
    if (data.get("ip_address")) port.fixed_ips = [{ ip_address: data.get("ip_address") }];
    await call("POST", "/ports", { body: { port } });
    announce("Port created");
    await page.refresh();
  });
  const errors = errorBox();
  const el = h("div", {},
    h("h1", {}, "VPCs, subnets and ports"), errors,
    vpcs.el, h("details.panel", {}, h("summary", {}, "Create VPC"), vpcForm),
    subnets.el, h("details.panel", {}, h("summary", {}, "Create subnet"), subnetForm),
    ports.el, h("details.panel", {}, h("summary", {}, "Create port"), portForm));
  const page = {
    title: "Network",
    el,
    errorBox: errors,
    async refresh() {
      const inv = await inventory();
      setOptions(subnetVpc, vpcOptions(inv));
      setOptions(portSubnet, [["", "Choose a subnet"], ...inv.subnets.map((s) => [s.id, `${s.name || s.id} (${s.cidr})`])]);
      syncRows(vpcs.tbody, inv.vpcs, (v) => v.id, (v) => h("tr", {}, td(v.name), td(mono(v.id)), td(mono(v.cidr)), td(badge(v.status))), "No VPCs yet.", 4);
      syncRows(subnets.tbody, inv.subnets, (s) => s.id, (s) => h("tr", {}, td(s.name), td(mono(s.id)), td(mono(s.cidr)), td(mono(s.gateway_ip)), td(mono(s.vpc_id))), "No subnets yet.", 5);
      syncRows(ports.tbody, inv.ports, (p) => p.id, (p) => h("tr", {}, td(p.name), td(mono(p.id)),
        td(mono((p.fixed_ips || []).map((f) => f.ip_address).join(", "))), td(mono(p.device_owner)), td(mono(p.network_id))), "No ports yet.", 5);
    },
  };
  return page;
}

// ------------------------------------------------------------------------ quotas and public

export function quotas() {
  const list = table("Quotas of this project", ["Resource", "Used", "Quota"]);
  const errors = errorBox();
  return {
    title: "Quotas",
    el: h("div", {}, h("h1", {}, "Quotas"), errors, list.el),
    errorBox: errors,
    async refresh() {
      const answers = await Promise.all([
        call("GET", "/quotas"),
        ...["vpc", "subnet", "port"].map((type) => call("GET", "/quotas", { query: { type } })),
      ]);
      const rows = answers.flatMap((a) => (a.quotas && a.quotas.resources) || []);
      syncRows(list.tbody, rows, (r) => r.type, (r) => h("tr", {}, td(r.type), td(String(r.used)), td(String(r.quota))), "No quotas.", 3);
    },
  };
}

export function publicServices() {
  const list = table("Public endpoint services (published by operators)", ["Name", "ID", "Owner", "Type", "Created"]);
  const errors = errorBox();
  return {
    title: "Public services",
    el: h("div", {}, h("h1", {}, "Public services"), errors, list.el),
    errorBox: errors,
    async refresh() {
      const data = await call("GET", "/vpc-endpoint-services/public", { query: { limit: 1000 } });
      syncRows(list.tbody, data.endpoint_services || [], (s) => s.id, (s) => h("tr", {},
        td(mono(s.service_name)), td(mono(s.id)), td(mono(s.owner)), td(s.service_type), td(s.created_at)), "No public services.", 5);
    },
  };
}

export { showError };
