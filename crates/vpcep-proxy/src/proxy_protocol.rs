//! PROXY protocol headers written to backends (HAProxy's `doc/proxy-protocol.txt`).
//!
//! | `tcp_proxy` | header sent |
//! |---|---|
//! | `close`, `toa_open` | none |
//! | `proxy_open`, `open` | v2 (default) or v1: client address/port → endpoint address/port |
//! | `proxy_vni` | as `proxy_open`, plus the VNI TLV (v2 only) |
//!
//! TLVs of the v2 header, in this order (custom types are in the `0xE0–0xEF` range that the
//! spec reserves for applications):
//!
//! | type | value | why |
//! |---|---|---|
//! | `0xEA` ([`PP2_TYPE_AWS`]) | `0x01` ([`PP2_SUBTYPE_AWS_VPCE_ID`]) then the ASCII endpoint id | AWS PrivateLink's layout, so go-proxyproto, nginx and HAProxy parsers read it unchanged |
//! | `0xE5` ([`PP2_TYPE_MARKER_ID`]) | `marker_id`, u32 big-endian | Huawei's "packet id" of the endpoint |
//! | `0xE6` ([`PP2_TYPE_VNI`]) | `vni`, u32 big-endian (`proxy_vni` only) | the consumer VPC's VNI |
//!
//! v1 is text and carries no TLVs. No CRC32C TLV is sent (the spec makes it optional).
//!
//! Headers are built with the `ppp` crate (2.x): it is the most used Rust implementation,
//! builds v1 and v2 including arbitrary TLVs, has no IO and depends only on `thiserror`, so it
//! keeps the byte layout out of our code; the tests also parse with it.

use std::io;
use std::net::{SocketAddr, SocketAddrV6};

use ppp::v2;

/// AWS TLV type (`PP2_TYPE_AWS`).
pub const PP2_TYPE_AWS: u8 = 0xEA;
/// AWS subtype: the value after it is the endpoint id (`PP2_SUBTYPE_AWS_VPCE_ID`).
pub const PP2_SUBTYPE_AWS_VPCE_ID: u8 = 0x01;
/// vpcep TLV type: the endpoint's `marker_id`, u32 big-endian.
pub const PP2_TYPE_MARKER_ID: u8 = 0xE5;
/// vpcep TLV type: the consumer VPC's VNI, u32 big-endian (with `proxy_vni`).
pub const PP2_TYPE_VNI: u8 = 0xE6;

/// What a header says about one connection.
#[derive(Debug, Clone, Copy)]
pub struct HeaderFields<'a> {
    /// The client's address and port.
    pub source: SocketAddr,
    /// The address and port the client connected to (the endpoint).
    pub destination: SocketAddr,
    /// Endpoint id (`0xEA`/`0x01` TLV).
    pub endpoint_id: &'a str,
    /// Marker id (`0xE5` TLV).
    pub marker_id: u32,
    /// VNI (`0xE6` TLV) when `Some`.
    pub vni: Option<u32>,
}

/// Both addresses in one family, as both versions require: a mixed pair becomes IPv6 with the
/// IPv4 side mapped (`::ffff:a.b.c.d`).
fn same_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    fn v6(a: SocketAddr) -> SocketAddr {
        match a {
            SocketAddr::V4(v4) => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            v6 => v6,
        }
    }
    if source.is_ipv4() == destination.is_ipv4() {
        (source, destination)
    } else {
        (v6(source), v6(destination))
    }
}

/// A v1 header: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`.
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    ppp::v1::Addresses::from(same_family(source, destination))
        .to_string()
        .into_bytes()
}

/// A v2 `PROXY` command header over TCP with the vpcep TLVs.
pub fn encode_v2(f: &HeaderFields<'_>) -> io::Result<Vec<u8>> {
    let mut endpoint = Vec::with_capacity(1 + f.endpoint_id.len());
    endpoint.push(PP2_SUBTYPE_AWS_VPCE_ID);
    endpoint.extend_from_slice(f.endpoint_id.as_bytes());
    let mut b = v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Proxy,
        v2::Protocol::Stream,
        same_family(f.source, f.destination),
    )
    .reserve_capacity(3 + endpoint.len() + 7 + 7)
    .write_tlv(PP2_TYPE_AWS, &endpoint)?
    .write_tlv(PP2_TYPE_MARKER_ID, &f.marker_id.to_be_bytes())?;
    if let Some(vni) = f.vni {
        b = b.write_tlv(PP2_TYPE_VNI, &vni.to_be_bytes())?;
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(vni: Option<u32>) -> HeaderFields<'static> {
        HeaderFields {
            source: "192.168.0.9:40000".parse().unwrap(),
            destination: "10.0.0.5:443".parse().unwrap(),
            endpoint_id: "4189d3c2-8882-4871-a3c2-d380272eed83",
            marker_id: 201515772,
            vni: Some(0x00AB_CDEF).filter(|_| vni.is_some()),
        }
    }

    #[test]
    fn v1_is_the_text_line() {
        let h = encode_v1(
            "192.168.0.9:40000".parse().unwrap(),
            "10.0.0.5:443".parse().unwrap(),
        );
        assert_eq!(h, b"PROXY TCP4 192.168.0.9 10.0.0.5 40000 443\r\n");
    }

    #[test]
    fn v1_maps_a_mixed_pair_to_tcp6() {
        let h = encode_v1(
            "192.168.0.9:1".parse().unwrap(),
            "[2001:db8::1]:2".parse().unwrap(),
        );
        assert_eq!(h, b"PROXY TCP6 ::ffff:192.168.0.9 2001:db8::1 1 2\r\n");
    }

    #[test]
    fn v2_has_the_exact_bytes_for_tcp4_with_tlvs() {
        let h = encode_v2(&fields(None)).unwrap();
        let mut want = vec![
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11,
        ];
        let id = b"4189d3c2-8882-4871-a3c2-d380272eed83";
        let len = 12 + (3 + 1 + id.len()) + (3 + 4);
        want.extend_from_slice(&(len as u16).to_be_bytes());
        want.extend_from_slice(&[192, 168, 0, 9, 10, 0, 0, 5]);
        want.extend_from_slice(&40000u16.to_be_bytes());
        want.extend_from_slice(&443u16.to_be_bytes());
        want.push(0xEA);
        want.extend_from_slice(&((1 + id.len()) as u16).to_be_bytes());
        want.push(0x01);
        want.extend_from_slice(id);
        want.extend_from_slice(&[0xE5, 0, 4]);
        want.extend_from_slice(&201515772u32.to_be_bytes());
        assert_eq!(h, want);
    }

    #[test]
    fn v2_parses_back_with_the_vni_tlv() {
        let h = encode_v2(&fields(Some(1))).unwrap();
        let parsed = v2::Header::try_from(&h[..]).unwrap();
        assert_eq!(parsed.command, v2::Command::Proxy);
        let tlvs: Vec<_> = parsed.tlvs().map(|t| t.unwrap()).collect();
        assert_eq!(tlvs.len(), 3);
        assert_eq!(tlvs[2].kind, PP2_TYPE_VNI);
        assert_eq!(&tlvs[2].value[..], &0x00AB_CDEFu32.to_be_bytes());
        match parsed.addresses {
            v2::Addresses::IPv4(a) => {
                assert_eq!(a.source_port, 40000);
                assert_eq!(a.destination_address.to_string(), "10.0.0.5");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
