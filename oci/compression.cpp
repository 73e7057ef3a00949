#include "oci/compression.hpp"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "oci/media_type.hpp"

namespace envbuild::oci {

namespace {

constexpr size_t kChunk = 1u << 20;

using Bytes = std::vector<std::byte>;

/// Raw deflate framed by hand: a fixed 10-byte header (no name, mtime 0, OS unix) and the
/// crc32/isize trailer, so identical input gives identical bytes on every host.
class GzipSink final : public common::ByteSink {
 public:
  GzipSink(common::ByteSink& next) : next_(next), out_(kChunk) {}
  ~GzipSink() override {
    if (initialized_) deflateEnd(&z_);
  }

  Result<void> init(int level) {
    std::memset(&z_, 0, sizeof z_);
    if (deflateInit2(&z_, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      return fail(Errc::Internal, "deflateInit2(level " + std::to_string(level) + ") failed");
    initialized_ = true;
    const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    return next_.write(std::as_bytes(std::span(header)));
  }

  Result<void> write(std::span<const std::byte> data) override {
    crc_ = crc32_z(crc_, reinterpret_cast<const Bytef*>(data.data()), data.size());
    isize_ += data.size();
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(data.data()));
    z_.avail_in = static_cast<uInt>(data.size());
    return pump(Z_NO_FLUSH);
  }

  Result<void> close() override {
    if (closed_) return ok();
    closed_ = true;
    ENVB_TRY(pump(Z_FINISH));
    unsigned char trailer[8];
    for (int i = 0; i < 4; ++i) trailer[i] = static_cast<unsigned char>(crc_ >> (8 * i));
    for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<unsigned char>(isize_ >> (8 * i));
    ENVB_TRY(next_.write(std::as_bytes(std::span(trailer))));
    return next_.close();
  }

 private:
  Result<void> pump(int flush) {
    for (;;) {
      z_.next_out = reinterpret_cast<Bytef*>(out_.data());
      z_.avail_out = static_cast<uInt>(out_.size());
      int rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) return fail(Errc::Internal, "deflate: stream error");
      size_t produced = out_.size() - z_.avail_out;
      if (produced > 0) ENVB_TRY(next_.write(std::span(out_).first(produced)));
      if (flush == Z_FINISH ? rc == Z_STREAM_END : (z_.avail_in == 0 && z_.avail_out != 0))
        return ok();
    }
  }

  common::ByteSink& next_;
  z_stream z_{};
  bool initialized_ = false;
  bool closed_ = false;
  uLong crc_ = crc32(0, nullptr, 0);
  uint64_t isize_ = 0;
  Bytes out_;
};

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

/// zstd worker threads: as many as the machine has cores, at most 4 (each holds ~20 MiB of job
/// buffers). Not part of the layer format: streaming multi-threaded zstd gives the same bytes for
/// any worker count >= 1 (facebook/zstd#2238, #2327; `zstd -T1` of the tar gives them too).
unsigned zstd_workers() {
  return std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
}

class ZstdSink final : public common::ByteSink {
 public:
  explicit ZstdSink(common::ByteSink& next) : next_(next), out_(ZSTD_CStreamOutSize()) {}

  Result<void> init(int level) {
    ctx_.reset(ZSTD_createCCtx());
    if (!ctx_) return fail(Errc::Internal, "ZSTD_createCCtx failed");
    for (auto [param, value] :
         {std::pair{ZSTD_c_compressionLevel, level}, std::pair{ZSTD_c_checksumFlag, 1}}) {
      size_t rc = ZSTD_CCtx_setParameter(ctx_.get(), param, value);
      if (ZSTD_isError(rc))
        return fail(Errc::InvalidInput,
                    std::string("ZSTD_CCtx_setParameter: ") + ZSTD_getErrorName(rc));
    }
    // Compress on zstd's own worker threads so that tar writing and hashing overlap with
    // compression. Streaming multi-threaded output depends on the parameters, not on how many
    // workers run it, but it differs from single-threaded output (nbWorkers 0). A libzstd
    // without threads refuses the parameter; it would compress inline, with different bytes.
    size_t rc =
        ZSTD_CCtx_setParameter(ctx_.get(), ZSTD_c_nbWorkers, static_cast<int>(zstd_workers()));
    if (ZSTD_isError(rc))
      return fail(Errc::Unsupported,
                  "this libzstd has no multi-threading; zstd layers would not be reproducible");
    return ok();
  }

  Result<void> write(std::span<const std::byte> data) override {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (in.pos < in.size) ENVB_TRY(step(in, ZSTD_e_continue));
    return ok();
  }

  Result<void> close() override {
    if (closed_) return ok();
    closed_ = true;
    ZSTD_inBuffer in{nullptr, 0, 0};
    for (;;) {
      ENVB_ASSIGN_OR_RETURN(size_t left, step(in, ZSTD_e_end));
      if (left == 0) break;
    }
    return next_.close();
  }

 private:
  Result<size_t> step(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{out_.data(), out_.size(), 0};
    size_t rc = ZSTD_compressStream2(ctx_.get(), &out, &in, mode);
    if (ZSTD_isError(rc))
      return fail(Errc::Internal, std::string("ZSTD_compressStream2: ") + ZSTD_getErrorName(rc));
    if (out.pos > 0) ENVB_TRY(next_.write(std::span(out_).first(out.pos)));
    return rc;
  }

  common::ByteSink& next_;
  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx_;
  Bytes out_;
  bool closed_ = false;
};

/// Shared input handling: an input buffer that starts with the bytes read to sniff the magic.
class InputBuffer {
 public:
  InputBuffer(std::unique_ptr<common::ByteSource> inner, Bytes head)
      : inner_(std::move(inner)), buf_(std::move(head)) {}
  /// Refills when empty; false at the end of the inner source.
  Result<bool> fill() {
    if (pos_ < buf_.size()) return true;
    buf_.resize(kChunk);
    ENVB_ASSIGN_OR_RETURN(size_t n, inner_->read(buf_));
    buf_.resize(n);
    pos_ = 0;
    return n > 0;
  }
  std::span<std::byte> available() { return std::span(buf_).subspan(pos_); }
  void consume(size_t n) { pos_ += n; }

 private:
  std::unique_ptr<common::ByteSource> inner_;
  Bytes buf_;
  size_t pos_ = 0;
};

class PlainSource final : public common::ByteSource {
 public:
  explicit PlainSource(InputBuffer in) : in_(std::move(in)) {}
  Result<size_t> read(std::span<std::byte> buffer) override {
    ENVB_ASSIGN_OR_RETURN(bool more, in_.fill());
    if (!more) return size_t{0};
    auto avail = in_.available();
    size_t n = std::min(avail.size(), buffer.size());
    std::memcpy(buffer.data(), avail.data(), n);
    in_.consume(n);
    return n;
  }

 private:
  InputBuffer in_;
};

class GunzipSource final : public common::ByteSource {
 public:
  GunzipSource(InputBuffer in, std::string what) : in_(std::move(in)), what_(std::move(what)) {}
  ~GunzipSource() override {
    if (initialized_) inflateEnd(&z_);
  }
  Result<void> init() {
    std::memset(&z_, 0, sizeof z_);
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK)
      return fail(Errc::Internal, "inflateInit2 failed");
    initialized_ = true;
    return ok();
  }

  Result<size_t> read(std::span<std::byte> buffer) override {
    while (true) {
      if (finished_member_) {
        // Another gzip member may follow (pigz and concatenated streams); anything else is junk.
        ENVB_ASSIGN_OR_RETURN(bool more, in_.fill());
        if (!more) return size_t{0};
        auto avail = in_.available();
        if (static_cast<unsigned char>(avail[0]) != 0x1f)
          return fail(Errc::Integrity, what_ + ": trailing garbage after gzip stream");
        inflateReset(&z_);
        finished_member_ = false;
      }
      ENVB_ASSIGN_OR_RETURN(bool more, in_.fill());
      auto avail = in_.available();
      z_.next_in = reinterpret_cast<Bytef*>(avail.data());
      z_.avail_in = static_cast<uInt>(avail.size());
      z_.next_out = reinterpret_cast<Bytef*>(buffer.data());
      z_.avail_out = static_cast<uInt>(buffer.size());
      int rc = inflate(&z_, Z_NO_FLUSH);
      in_.consume(avail.size() - z_.avail_in);
      size_t produced = buffer.size() - z_.avail_out;
      if (rc == Z_STREAM_END) {
        finished_member_ = true;
      } else if (rc == Z_BUF_ERROR && !more) {
        return fail(Errc::Integrity, what_ + ": truncated gzip stream");
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return fail(Errc::Integrity, what_ + ": corrupt gzip stream: " +
                                         (z_.msg ? z_.msg : "inflate error " + std::to_string(rc)));
      }
      if (produced > 0) return produced;
      if (!more && !finished_member_)
        return fail(Errc::Integrity, what_ + ": truncated gzip stream");
    }
  }

 private:
  InputBuffer in_;
  std::string what_;
  z_stream z_{};
  bool initialized_ = false;
  bool finished_member_ = false;
};

class UnzstdSource final : public common::ByteSource {
 public:
  UnzstdSource(InputBuffer in, std::string what) : in_(std::move(in)), what_(std::move(what)) {}
  Result<void> init() {
    ctx_.reset(ZSTD_createDCtx());
    if (!ctx_) return fail(Errc::Internal, "ZSTD_createDCtx failed");
    // A hostile frame may ask for a huge window; cap it at 128 MiB (zstd --long=27).
    ZSTD_DCtx_setParameter(ctx_.get(), ZSTD_d_windowLogMax, 27);
    return ok();
  }

  Result<size_t> read(std::span<std::byte> buffer) override {
    while (true) {
      ENVB_ASSIGN_OR_RETURN(bool more, in_.fill());
      auto avail = in_.available();
      if (!more) {
        if (frame_open_) return fail(Errc::Integrity, what_ + ": truncated zstd stream");
        return size_t{0};
      }
      ZSTD_inBuffer in{avail.data(), avail.size(), 0};
      ZSTD_outBuffer out{buffer.data(), buffer.size(), 0};
      size_t rc = ZSTD_decompressStream(ctx_.get(), &out, &in);
      in_.consume(in.pos);
      if (ZSTD_isError(rc))
        return fail(Errc::Integrity, what_ + ": corrupt zstd stream: " + ZSTD_getErrorName(rc));
      frame_open_ = rc != 0;
      if (out.pos > 0) return out.pos;
    }
  }

 private:
  InputBuffer in_;
  std::string what_;
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx_;
  bool frame_open_ = false;
};

}  // namespace

std::string_view to_string(Compression c) {
  switch (c) {
    case Compression::None:
      return "none";
    case Compression::Gzip:
      return "gzip";
    case Compression::Zstd:
      return "zstd";
  }
  return "?";
}

std::string_view layer_media_type(Compression c) {
  switch (c) {
    case Compression::None:
      return media_type::kOciLayerTar;
    case Compression::Gzip:
      return media_type::kOciLayerGzip;
    case Compression::Zstd:
      return media_type::kOciLayerZstd;
  }
  return media_type::kOciLayerTar;
}

Result<Compression> compression_of_media_type(std::string_view t) {
  if (t.ends_with("+gzip") || t.ends_with(".tar.gzip")) return Compression::Gzip;
  if (t.ends_with("+zstd")) return Compression::Zstd;
  if (t.ends_with(".tar") || t.ends_with(".diff.tar")) return Compression::None;
  return fail(Errc::Unsupported, "media type '" + std::string(t) + "' is not a known layer type");
}

Compression detect_compression(std::span<const std::byte> head) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(head[i]); };
  if (head.size() >= 2 && b(0) == 0x1f && b(1) == 0x8b) return Compression::Gzip;
  if (head.size() >= 4 && b(0) == 0x28 && b(1) == 0xb5 && b(2) == 0x2f && b(3) == 0xfd)
    return Compression::Zstd;
  return Compression::None;
}

int default_level(Compression c) {
  return c == Compression::Zstd ? 3 : 6;
}

Result<std::unique_ptr<common::ByteSink>> make_compressor(Compression c, int level,
                                                          common::ByteSink& next) {
  switch (c) {
    case Compression::Gzip: {
      if (level < 1 || level > 9)
        return fail(Errc::InvalidInput, "gzip level " + std::to_string(level) + " not in 1..9");
      auto sink = std::make_unique<GzipSink>(next);
      ENVB_TRY(sink->init(level));
      return std::unique_ptr<common::ByteSink>(std::move(sink));
    }
    case Compression::Zstd: {
      auto sink = std::make_unique<ZstdSink>(next);
      ENVB_TRY(sink->init(level));
      return std::unique_ptr<common::ByteSink>(std::move(sink));
    }
    case Compression::None:
      break;
  }
  struct Forward final : common::ByteSink {
    explicit Forward(common::ByteSink& n) : next(n) {}
    Result<void> write(std::span<const std::byte> d) override { return next.write(d); }
    Result<void> close() override { return next.close(); }
    common::ByteSink& next;
  };
  return std::unique_ptr<common::ByteSink>(std::make_unique<Forward>(next));
}

Result<std::unique_ptr<common::ByteSource>> make_decompressor(
    std::unique_ptr<common::ByteSource> inner, std::string what) {
  // Sniff up to 4 bytes; short reads are allowed, so loop.
  Bytes head(4);
  size_t got = 0;
  while (got < head.size()) {
    ENVB_ASSIGN_OR_RETURN(size_t n, inner->read(std::span(head).subspan(got)));
    if (n == 0) break;
    got += n;
  }
  head.resize(got);
  Compression c = detect_compression(head);
  InputBuffer in(std::move(inner), std::move(head));
  switch (c) {
    case Compression::Gzip: {
      auto s = std::make_unique<GunzipSource>(std::move(in), std::move(what));
      ENVB_TRY(s->init());
      return std::unique_ptr<common::ByteSource>(std::move(s));
    }
    case Compression::Zstd: {
      auto s = std::make_unique<UnzstdSource>(std::move(in), std::move(what));
      ENVB_TRY(s->init());
      return std::unique_ptr<common::ByteSource>(std::move(s));
    }
    case Compression::None:
      break;
  }
  return std::unique_ptr<common::ByteSource>(std::make_unique<PlainSource>(std::move(in)));
}

}  // namespace envbuild::oci
