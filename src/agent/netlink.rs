//! The node's interface addresses, read from the kernel over rtnetlink, and the kernel's
//! word that they changed.
//!
//! Why rtnetlink through the rust-netlink crates (`netlink-sys` for the socket,
//! `netlink-packet-route` for the messages), and not getifaddrs (`if-addrs`, `nix`):
//! - the same socket family delivers change notifications (`RTMGRP_IPV4_IFADDR`,
//!   `RTMGRP_IPV6_IFADDR`, `RTMGRP_LINK`), so a new address is published within a second
//!   and an idle node costs nothing, instead of a periodic read; `if-addrs`' notifier
//!   joins only the link group and so misses a new address on an existing interface;
//! - a dump gives the prefix length, the kernel's order and the address flags (a
//!   tentative IPv6 address is not usable yet) directly;
//! - they are the crates the Rust netlink ecosystem (rtnetlink, youki, netavark) is built
//!   on, and they do every `unsafe` socket call; this crate stays `forbid(unsafe_code)`.
//!
//! Reading addresses and joining these groups needs no capability (rtnetlink lets any
//! user receive them), so the agent runs without any.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{AsyncSocket, AsyncSocketExt, Socket, SocketAddr, TokioSocket};

use super::publish::LinkAddress;

/// Multicast groups of link and address changes (linux `include/uapi/linux/rtnetlink.h`,
/// the legacy `RTMGRP_*` bit masks that `bind` takes).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// `ENOBUFS` on Linux: the kernel dropped notifications because the socket buffer was
/// full. Something changed, so it counts as a change.
const ENOBUFS: i32 = 105;

/// How often a dump interrupted by a concurrent change (`NLM_F_DUMP_INTR`) is retried.
const DUMP_TRIES: usize = 5;

/// Every address of every interface, interfaces in index order and addresses as the
/// kernel lists them. A dump that a change interrupted is read again.
pub fn read_addresses() -> io::Result<Vec<LinkAddress>> {
    let mut last = None;
    for _ in 0..DUMP_TRIES {
        let (links, links_torn) = dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        let (addrs, addrs_torn) = dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        let names: BTreeMap<u32, String> = links
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => {
                    let name = link.attributes.into_iter().find_map(|a| match a {
                        LinkAttribute::IfName(name) => Some(name),
                        _ => None,
                    })?;
                    Some((link.header.index, name))
                }
                _ => None,
            })
            .collect();
        let read: Vec<LinkAddress> = addrs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => link_address(a, &names),
                _ => None,
            })
            .collect();
        if !links_torn && !addrs_torn {
            return Ok(read);
        }
        last = Some(read);
    }
    // Still changing after several tries: what was read last is the best guess, and the
    // change notification that follows triggers another read.
    Ok(last.unwrap_or_default())
}

/// One address message as a [`LinkAddress`]; `None` for an interface without a name.
fn link_address(message: AddressMessage, names: &BTreeMap<u32, String>) -> Option<LinkAddress> {
    let interface = names.get(&message.header.index)?.clone();
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()));
    for attribute in message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(ip),
            AddressAttribute::Address(ip) => address = Some(ip),
            // IFA_FLAGS carries all 32 bits; the header only the low 8.
            AddressAttribute::Flags(f) => flags = f,
            _ => {}
        }
    }
    // On a point-to-point link IFA_ADDRESS is the peer and IFA_LOCAL this end; elsewhere
    // they are equal or only IFA_ADDRESS is set (IPv6). glibc's getifaddrs reads them so.
    let ip: IpAddr = local.or(address)?;
    let usable = !flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed)
        && !message
            .header
            .flags
            .intersects(AddressHeaderFlags::Tentative | AddressHeaderFlags::Dadfailed);
    Some(LinkAddress {
        interface,
        ip,
        prefix: message.header.prefix_len,
        usable,
    })
}

/// Sends one dump request on a fresh socket and collects the answers, with whether the
/// kernel marked the dump inconsistent.
fn dump(request: RouteNetlinkMessage) -> io::Result<(Vec<RouteNetlinkMessage>, bool)> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(request));
    packet.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
    packet.header.sequence_number = 1;
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut out = Vec::new();
    let mut torn = false;
    loop {
        let (data, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let message: NetlinkMessage<RouteNetlinkMessage> =
                NetlinkMessage::deserialize(&data[offset..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let length = message.header.length as usize;
            torn |= message.header.flags & NLM_F_DUMP_INTR != 0;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok((out, torn)),
                NetlinkPayload::Error(e) => return Err(e.to_io()),
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            }
            if length == 0 {
                break;
            }
            // Messages are aligned to 4 bytes (NLMSG_ALIGN).
            offset += (length + 3) & !3;
        }
    }
}

/// A socket subscribed to the kernel's link and address changes.
pub struct Monitor {
    socket: TokioSocket,
    buf: Vec<u8>,
}

impl Monitor {
    /// Joins the link, IPv4 and IPv6 address groups.
    pub fn new() -> io::Result<Monitor> {
        let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
        socket.socket_mut().bind(&SocketAddr::new(
            0,
            RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
        ))?;
        Ok(Monitor {
            socket,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Waits for the kernel's next link or address message. What it says does not matter:
    /// the caller reads everything again. Lost messages (`ENOBUFS`) count as a change.
    pub async fn changed(&mut self) -> io::Result<()> {
        self.buf.clear();
        match self.socket.recv(&mut self.buf).await {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(ENOBUFS) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until no message has come for `quiet`, or `limit` has passed: one change is
    /// often several messages (an address, its route, IPv6 DAD completing a moment later),
    /// and one read after them is enough.
    pub async fn settle(&mut self, quiet: Duration, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let until = (tokio::time::Instant::now() + quiet).min(deadline);
            match tokio::time::timeout_at(until, self.changed()).await {
                Ok(Ok(())) if tokio::time::Instant::now() < deadline => continue,
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel of the test machine: the loopback interface is always there.
    #[test]
    fn reads_the_loopback_address_of_this_host() {
        let read = read_addresses().expect("an rtnetlink dump");
        assert!(
            read.iter().any(|a| a.interface == "lo"
                && a.ip == IpAddr::from([127, 0, 0, 1])
                && a.prefix == 8
                && a.usable),
            "{read:?}"
        );
    }
}
