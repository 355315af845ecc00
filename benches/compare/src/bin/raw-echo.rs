//! `raw-echo`: the practical limit — a bare tokio TCP echo of u32 (big-endian)
//! length-prefixed frames, no framework, no codec.
//!
//! The client sends the 581 bytes of the protobuf-encoded benchmark message (or `--size`
//! bytes) in one frame and waits for the same frame back; the server reads a frame and
//! writes it back. One connection per caller (it has no multiplexing), TCP_NODELAY on, a
//! buffered reader and one `write_all` per frame on each side.

use std::process::ExitCode;

use bytes::{BufMut, Bytes, BytesMut};
use jaunt_benches::echo::raw_body;
use jaunt_benches::load::{Caller, ClientOpts};
use jaunt_benches::{benchmark_body, MESSAGE_LEN};
use jaunt_compare::Supports;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The largest frame accepted.
const MAX_FRAME: usize = 16 << 20;

/// Reads one frame's body into `buf` (cleared first).
async fn read_frame(stream: &mut BufReader<TcpStream>, buf: &mut BytesMut) -> std::io::Result<()> {
    let len = stream.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other("frame too large"));
    }
    buf.clear();
    buf.resize(len, 0);
    stream.read_exact(&mut buf[..]).await?;
    Ok(())
}

async fn echo_conn(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut stream = BufReader::with_capacity(64 * 1024, stream);
    let mut body = BytesMut::with_capacity(4096);
    let mut out = BytesMut::with_capacity(4096);
    loop {
        read_frame(&mut stream, &mut body).await?;
        out.clear();
        out.put_u32(body.len() as u32);
        out.extend_from_slice(&body);
        stream.get_mut().write_all(&out).await?;
    }
}

async fn serve(addr: String) -> Result<String, String> {
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(echo_conn(stream));
            }
        }
    });
    Ok(bound.to_string())
}

struct RawCaller {
    stream: BufReader<TcpStream>,
    /// The whole request frame: length and body.
    frame: Bytes,
    reply: BytesMut,
}

impl Caller for RawCaller {
    async fn call(&mut self) -> Result<(), String> {
        self.stream
            .get_mut()
            .write_all(&self.frame)
            .await
            .map_err(|e| e.to_string())?;
        read_frame(&mut self.stream, &mut self.reply)
            .await
            .map_err(|e| e.to_string())?;
        if self.reply[..] == self.frame[4..] {
            Ok(())
        } else {
            Err(format!(
                "echo of {} bytes came back as {} other bytes",
                self.frame.len() - 4,
                self.reply.len()
            ))
        }
    }
}

async fn connect(opts: ClientOpts) -> Result<Vec<RawCaller>, String> {
    let body = match opts.size {
        Some(size) => raw_body(size),
        None => benchmark_body(),
    };
    assert!(opts.size.is_some() || body.len() == MESSAGE_LEN);
    let mut frame = BytesMut::with_capacity(4 + body.len());
    frame.put_u32(body.len() as u32);
    frame.extend_from_slice(&body);
    let frame = frame.freeze();
    let mut callers = Vec::with_capacity(opts.c);
    for _ in 0..opts.c {
        let stream = TcpStream::connect(&opts.addr)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", opts.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        callers.push(RawCaller {
            stream: BufReader::with_capacity(64 * 1024, stream),
            frame: frame.clone(),
            reply: BytesMut::with_capacity(4096),
        });
    }
    Ok(callers)
}

fn main() -> ExitCode {
    jaunt_compare::main(
        "raw-echo",
        Supports {
            size: true,
            shared_conns: false,
        },
        serve,
        connect,
    )
}
