"""Grows the endpoint table of a stopped vpcep SQLite database to N DNS names for the DNS
benchmark: each new row is a copy of an endpoint the API created (the template: accepted, with
enable_dns), with its own id, marker id, address and name, so the rows are what the server
itself stores. Prints the zone's names and addresses as "name ip" lines.

usage: seed.py DB TEMPLATE_ID N REGION
"""
import ipaddress
import json
import sqlite3
import sys
import uuid

db, template, n, region = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
con = sqlite3.connect(db)
con.row_factory = sqlite3.Row
row = dict(con.execute("SELECT * FROM endpoints WHERE id = ?", (template,)).fetchone())
row.pop("seq", None)
base = ipaddress.ip_address(row["ip"])
marker = con.execute("SELECT MAX(marker_id) FROM endpoints").fetchone()[0]
names = [(json.loads(row["dns_names"])[0], row["ip"])]
cols = list(row.keys())
sql = f"INSERT INTO endpoints ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
batch = []
for k in range(1, n):
    new = dict(row)
    new["id"] = str(uuid.uuid4())
    new["marker_id"] = marker + k
    new["ip"] = str(base + k)
    name = f"{new['id']}.vpcep.{region}.internal"
    new["dns_names"] = json.dumps([name])
    batch.append([new[c] for c in cols])
    names.append((name, new["ip"]))
con.executemany(sql, batch)
con.commit()
for name, ip in names:
    print(name, ip)
