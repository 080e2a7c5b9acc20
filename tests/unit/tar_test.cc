#include "common/tar.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

std::string Sub(const TempDir& dir, const std::string& name) { return dir.path() + "/" + name; }

void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
}

void SetMtime(const std::string& path, time_t seconds) {
  const timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// What a tree looks like, for comparing a source with its extraction.
struct Node {
  char kind;  // 'f', 'd', 'l'
  mode_t mode;
  time_t mtime;
  std::string content;  // file contents or symlink target
  bool operator==(const Node&) const = default;
};

std::map<std::string, Node> Snapshot(const std::string& root) {
  std::map<std::string, Node> nodes;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    std::string relative = entry.path().lexically_relative(root).string();
    struct stat st;
    EXPECT_EQ(lstat(entry.path().c_str(), &st), 0);
    Node node{'f', st.st_mode & 07777, st.st_mtim.tv_sec, ""};
    if (S_ISDIR(st.st_mode)) {
      node.kind = 'd';
    } else if (S_ISLNK(st.st_mode)) {
      node.kind = 'l';
      node.mode = 0;  // symlink permissions are meaningless on Linux
      node.content = fs::read_symlink(entry.path()).string();
    } else {
      node.content = ReadFile(entry.path());
    }
    nodes[relative] = node;
  }
  return nodes;
}

// Builds a tree with every kind of entry the writer handles.
void MakeSourceTree(const TempDir& dir) {
  WriteFile(Sub(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n");
  WriteFile(Sub(dir, "empty"), "");
  WriteFile(Sub(dir, "bin/run.sh"), "#!/bin/sh\necho hi\n", 0755);
  WriteFile(Sub(dir, "src/nested/deep/file.c"), "int main() { return 0; }\n", 0600);
  std::string binary(70000, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 7);
  WriteFile(Sub(dir, "data.bin"), binary);
  // Fits ustar only through the prefix field.
  WriteFile(Sub(dir, std::string(60, 'p') + "/" + std::string(90, 'q')), "prefix");
  // A final component longer than 100 bytes needs a PAX path.
  WriteFile(Sub(dir, "long/" + std::string(150, 'n') + ".txt"), "pax");
  ASSERT_EQ(symlink("src/nested", Sub(dir, "link").c_str()), 0);
  ASSERT_EQ(symlink(("missing/" + std::string(120, 't')).c_str(), Sub(dir, "longlink").c_str()), 0);
  ASSERT_EQ(chmod(Sub(dir, "src/nested").c_str(), 0750), 0);
  SetMtime(Sub(dir, "Dockerfile"), 1'000'000'000);
  SetMtime(Sub(dir, "link"), 1'100'000'000);
  SetMtime(Sub(dir, "src/nested"), 1'200'000'000);
}

std::string ArchiveOf(const std::string& dir,
                      const std::function<bool(const std::string&, bool)>& exclude = {}) {
  std::string archive;
  Status status = WriteTarFromDirectory(dir, exclude, &archive);
  EXPECT_TRUE(status.ok()) << status.message();
  return archive;
}

// Entry names in an archive, read from the ustar name/prefix fields and PAX path records
// with code independent of the implementation under test.
std::vector<std::string> ListNames(const std::string& archive) {
  std::vector<std::string> names;
  std::string pax_path;
  for (size_t offset = 0; offset + 512 <= archive.size();) {
    const char* h = archive.data() + offset;
    if (h[0] == '\0') break;
    size_t size = std::strtoull(std::string(h + 124, 11).c_str(), nullptr, 8);
    std::string name(h, strnlen(h, 100));
    std::string prefix(h + 345, strnlen(h + 345, 155));
    if (!prefix.empty()) name = prefix + "/" + name;
    if (h[156] == 'x') {
      std::string records(archive, offset + 512, size);
      size_t at = records.find(" path=");
      if (at != std::string::npos) {
        size_t start = at + 6;
        pax_path = records.substr(start, records.find('\n', start) - start);
      }
    } else {
      names.push_back(pax_path.empty() ? name : pax_path);
      pax_path.clear();
    }
    offset += 512 + (size + 511) / 512 * 512;
  }
  return names;
}

TEST(TarTest, RoundTripKeepsContentsModesLinksAndMtimes) {
  TempDir source;
  MakeSourceTree(source);
  std::string archive = ArchiveOf(source.path());
  ASSERT_EQ(archive.size() % 512, 0u);

  TempDir dest;
  Status status = ExtractTar(archive, Sub(dest, "out"), ExtractLimits());
  ASSERT_TRUE(status.ok()) << status.message();

  std::map<std::string, Node> want = Snapshot(source.path());
  std::map<std::string, Node> got = Snapshot(Sub(dest, "out"));
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [path, node] : want) {
    ASSERT_TRUE(got.count(path)) << "missing " << path;
    const Node& other = got[path];
    EXPECT_EQ(other.kind, node.kind) << path;
    EXPECT_EQ(other.mode, node.mode) << path;
    EXPECT_EQ(other.content, node.content) << path;
    EXPECT_EQ(other.mtime, node.mtime) << path;
  }
  EXPECT_EQ(got["bin/run.sh"].mode, 0755u);
  EXPECT_EQ(got["Dockerfile"].mtime, 1'000'000'000);
  EXPECT_EQ(got["src/nested"].mtime, 1'200'000'000);
  EXPECT_EQ(got["src/nested"].mode, 0750u);
}

TEST(TarTest, WriterIsDeterministicSortedAndOwnerless) {
  TempDir source;
  MakeSourceTree(source);
  std::string first = ArchiveOf(source.path());
  std::string second = ArchiveOf(source.path());
  EXPECT_EQ(first, second);

  std::vector<std::string> names = ListNames(first);
  ASSERT_FALSE(names.empty());
  // Sorted by relative path, which directory names carry with a trailing '/'.
  std::vector<std::string> paths;
  for (const std::string& name : names) {
    paths.push_back(name.ends_with('/') ? name.substr(0, name.size() - 1) : name);
  }
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end()));
  auto position = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) - names.begin();
  };
  EXPECT_LT(position("src/"), position("src/nested/"));
  EXPECT_LT(position("src/nested/"), position("src/nested/deep/file.c"));
  EXPECT_LT(position("src/nested/deep/file.c"), static_cast<long>(names.size()));

  for (size_t offset = 0; offset + 512 <= first.size(); offset += 512) {
    const char* h = first.data() + offset;
    if (std::memcmp(h + 257, "ustar\0", 6) != 0) continue;  // data block
    EXPECT_EQ(std::string(h + 108, 7), "0000000") << "uid at " << offset;
    EXPECT_EQ(std::string(h + 116, 7), "0000000") << "gid at " << offset;
    EXPECT_EQ(h[265], '\0') << "uname at " << offset;
    EXPECT_EQ(h[297], '\0') << "gname at " << offset;
  }
}

TEST(TarTest, AppendsToExistingArchiveString) {
  TempDir source;
  WriteFile(Sub(source, "a"), "x");
  std::string archive = "keep";
  ASSERT_TRUE(WriteTarFromDirectory(source.path(), {}, &archive).ok());
  EXPECT_EQ(archive.substr(0, 4), "keep");
  EXPECT_EQ(archive.substr(4), ArchiveOf(source.path()));
}

TEST(TarTest, ExcludeDropsEntriesAndSkipsExcludedDirectories) {
  TempDir source;
  WriteFile(Sub(source, "keep.txt"), "k");
  WriteFile(Sub(source, "debug.log"), "l");
  WriteFile(Sub(source, "node_modules/pkg/index.js"), "js");
  WriteFile(Sub(source, "src/app.log"), "l");
  WriteFile(Sub(source, "src/main.cc"), "cc");

  std::vector<std::pair<std::string, bool>> seen;
  auto exclude = [&](const std::string& path, bool is_dir) {
    seen.emplace_back(path, is_dir);
    return path == "node_modules" || path.ends_with(".log");
  };
  std::string archive = ArchiveOf(source.path(), exclude);
  EXPECT_EQ(ListNames(archive), (std::vector<std::string>{"keep.txt", "src/", "src/main.cc"}));

  std::set<std::pair<std::string, bool>> seen_set(seen.begin(), seen.end());
  EXPECT_TRUE(seen_set.count({"node_modules", true}));
  EXPECT_TRUE(seen_set.count({"src", true}));
  EXPECT_TRUE(seen_set.count({"src/app.log", false}));
  for (const auto& [path, is_dir] : seen) {
    EXPECT_FALSE(path.starts_with("node_modules/")) << "asked about " << path;
  }
}

TEST(TarTest, SpecialFilesRejectedByName) {
  TempDir source;
  WriteFile(Sub(source, "a.txt"), "a");
  ASSERT_EQ(mkfifo(Sub(source, "pipe").c_str(), 0644), 0);
  std::string archive;
  Status status = WriteTarFromDirectory(source.path(), {}, &archive);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("pipe"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("fifo"), std::string::npos) << status.message();
  EXPECT_TRUE(archive.empty());

  // Excluding it makes the context valid.
  auto exclude = [](const std::string& path, bool) { return path == "pipe"; };
  EXPECT_TRUE(WriteTarFromDirectory(source.path(), exclude, &archive).ok());
}

TEST(TarTest, MissingDirectoryIsAnError) {
  TempDir base;
  std::string archive;
  EXPECT_EQ(WriteTarFromDirectory(Sub(base, "nope"), {}, &archive).code(), Status::Code::kNotFound);
  WriteFile(Sub(base, "file"), "x");
  EXPECT_EQ(WriteTarFromDirectory(Sub(base, "file"), {}, &archive).code(),
            Status::Code::kInvalidArgument);
}

// ---- Hand-made archives, written independently of the implementation under test.

std::string Header(const std::string& name, char type, size_t size = 0,
                   const std::string& linkname = "", unsigned mode = 0644,
                   const char* magic = "ustar") {
  char h[512] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(h + 100, 8, "%07o", mode);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011zo", size);
  std::snprintf(h + 136, 12, "%011o", 1'500'000'000);
  h[156] = type;
  std::memcpy(h + 157, linkname.data(), std::min<size_t>(linkname.size(), 100));
  std::memcpy(h + 257, magic, std::strlen(magic));
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  return std::string(h, 512);
}

std::string Padded(const std::string& data) {
  return data + std::string((512 - data.size() % 512) % 512, '\0');
}

std::string Entry(const std::string& name, char type, const std::string& data = "",
                  const std::string& linkname = "") {
  return Header(name, type, data.size(), linkname) + Padded(data);
}

std::string PaxRecord(const std::string& key, const std::string& value) {
  std::string body = " " + key + "=" + value + "\n";
  size_t length = body.size() + 1;
  while (std::to_string(length).size() + body.size() != length) {
    length = std::to_string(length).size() + body.size();
  }
  return std::to_string(length) + body;
}

const std::string kEnd(1024, '\0');
const std::string kOkFile = Entry("ok.txt", '0', "fine");

struct Hostile {
  const char* what;
  std::string archive;
  const char* expected_in_message;
};

std::vector<Hostile> HostileArchives() {
  std::string truncated_data = kOkFile + Header("big", '0', 2000) + std::string(600, 'x');
  std::string bad_checksum = kOkFile + Entry("evil", '0', "x") + kEnd;
  bad_checksum[512 + 512 + 10] = 'Z';  // inside the second header's name
  return {
      {"absolute path", kOkFile + Entry("/etc/evil", '0', "x") + kEnd, "/etc/evil"},
      {"parent path", kOkFile + Entry("../x", '0', "x") + kEnd, "../x"},
      {"inner parent path", kOkFile + Entry("a/../../x", '0', "x") + kEnd, "a/../../x"},
      {"absolute symlink", kOkFile + Entry("etc", '2', "", "/etc") + kEnd, "/etc"},
      {"escaping symlink", kOkFile + Entry("sub/l", '2', "", "../../x") + kEnd, "../../x"},
      {"escaping symlink via chain",
       kOkFile + Entry("s", '2', "", ".") + Entry("l", '2', "", "s/../x") + kEnd, "s/../x"},
      {"symlink loop", kOkFile + Entry("a", '2', "", "b") + Entry("b", '2', "", "a") + kEnd,
       "too many symlinks"},
      {"entry beneath symlink",
       kOkFile + Entry("d", '2', "", "sub") + Entry("d/x", '0', "x") + kEnd, "d/x"},
      {"entry beneath file", kOkFile + Entry("f", '0', "x") + Entry("f/x", '0', "x") + kEnd,
       "not a directory"},
      // Streamed, each entry is checked on arrival; these need the ones after it too.
      {"escaping through a later symlink",
       kOkFile + Entry("l", '2', "", "s/../x") + Entry("s", '2', "", ".") + kEnd, "s/../x"},
      {"symlink over an earlier entry's parent",
       kOkFile + Entry("d/x", '0', "x") + Entry("d", '2', "", "sub") + kEnd, "d/x"},
      {"char device", kOkFile + Entry("null", '3') + kEnd, "null"},
      {"block device", kOkFile + Entry("sda", '4') + kEnd, "sda"},
      {"fifo", kOkFile + Entry("pipe", '6') + kEnd, "pipe"},
      {"unknown type", kOkFile + Entry("sparse", 'S') + kEnd, "unsupported entry type"},
      {"hard link outside", kOkFile + Entry("h", '1', "", "../x") + kEnd, "../x"},
      {"hard link absolute", kOkFile + Entry("h", '1', "", "/etc/passwd") + kEnd, "/etc/passwd"},
      {"hard link to later entry",
       kOkFile + Entry("h", '1', "", "later") + Entry("later", '0', "x") + kEnd, "later"},
      {"hard link to missing", kOkFile + Entry("h", '1', "", "nothing") + kEnd, "nothing"},
      {"hard link to directory", kOkFile + Entry("dir/", '5') + Entry("h", '1', "", "dir") + kEnd,
       "not a regular file"},
      {"duplicate file", kOkFile + Entry("ok.txt", '0', "again") + kEnd, "more than once"},
      {"pax path escape",
       kOkFile + Entry("pax", 'x', PaxRecord("path", "../evil")) + Entry("harmless", '0', "x") +
           kEnd,
       "../evil"},
      {"gnu long name escape",
       kOkFile + Entry("././@LongLink", 'L', std::string("/abs/evil") + '\0') +
           Entry("harmless", '0', "x") + kEnd,
       "/abs/evil"},
      {"malformed pax", kOkFile + Entry("pax", 'x', "99 path=x\n") + Entry("y", '0') + kEnd, "PAX"},
      {"pax without entry", kOkFile + Entry("pax", 'x', PaxRecord("path", "a")) + kEnd,
       "describes no entry"},
      {"truncated data", truncated_data, "truncated"},
      {"truncated header", kOkFile + Header("next", '0').substr(0, 300), "truncated"},
      {"no end marker", kOkFile, "end-of-archive"},
      {"bad checksum", bad_checksum, "checksum"},
      {"not a tar", std::string(2048, 'x'), "checksum"},
  };
}

// Fed as a download delivers it, in pieces that split headers and data anywhere.
Status ExtractInPieces(std::string_view archive, const std::string& dest, size_t piece) {
  TarExtractor extractor(dest, ExtractLimits());
  for (size_t at = 0; at < archive.size(); at += piece) {
    if (Status s = extractor.Write(archive.substr(at, piece)); !s.ok()) return s;
  }
  return extractor.Finish();
}

// Whole, and in pieces of 7 bytes: either way nothing is left behind.
TEST(TarTest, HostileArchivesRejectedWithNothingWritten) {
  for (size_t piece : {size_t{0}, size_t{7}}) {
    for (const Hostile& hostile : HostileArchives()) {
      TempDir base;
      std::string dest = Sub(base, "dest");
      Status status = piece == 0 ? ExtractTar(hostile.archive, dest, ExtractLimits())
                                 : ExtractInPieces(hostile.archive, dest, piece);
      ASSERT_FALSE(status.ok()) << hostile.what;
      EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << hostile.what;
      EXPECT_NE(status.message().find(hostile.expected_in_message), std::string::npos)
          << hostile.what << " (" << piece << "): " << status.message();
      EXPECT_FALSE(fs::exists(dest)) << hostile.what << " wrote into the destination";
      EXPECT_TRUE(fs::is_empty(base.path())) << hostile.what << " wrote next to it";
    }
  }
}

TEST(TarTest, CompressedArchiveIsRefusedByName) {
  TempDir base;
  std::string gzip = std::string("\x1f\x8b\x08\x00", 4) + std::string(2044, '\x01');
  Status status = ExtractTar(gzip, Sub(base, "d"), ExtractLimits());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("gzip-compressed"), std::string::npos) << status.message();
  EXPECT_FALSE(fs::exists(Sub(base, "d")));
  // A tar whose first name happens to start with those bytes is still a tar.
  ASSERT_TRUE(
      ExtractTar(Entry("\x1f\x8b-name", '0', "x") + kEnd, Sub(base, "t"), ExtractLimits()).ok());
}

TEST(TarTest, SameArchivesWithoutTheHostilePartExtract) {
  // Guards the hostile cases above: the benign prefix they share is itself valid.
  TempDir base;
  ASSERT_TRUE(ExtractTar(kOkFile + kEnd, Sub(base, "d"), ExtractLimits()).ok());
  EXPECT_EQ(ReadFile(Sub(base, "d/ok.txt")), "fine");
}

TEST(TarTest, LimitsOnEntriesAndBytes) {
  std::string archive = Entry("a", '0', "12345") + Entry("b", '0', "67890") + kEnd;
  TempDir base;
  ExtractLimits limits;
  limits.max_entries = 1;
  Status status = ExtractTar(archive, Sub(base, "one"), limits);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("more than 1 entries"), std::string::npos) << status.message();
  EXPECT_FALSE(fs::exists(Sub(base, "one")));

  limits = ExtractLimits();
  limits.max_total_bytes = 9;
  status = ExtractTar(archive, Sub(base, "nine"), limits);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("\"b\""), std::string::npos) << status.message();
  EXPECT_FALSE(fs::exists(Sub(base, "nine")));

  limits.max_entries = 2;
  limits.max_total_bytes = 10;
  EXPECT_TRUE(ExtractTar(archive, Sub(base, "exact"), limits).ok());
  EXPECT_EQ(ReadFile(Sub(base, "exact/b")), "67890");
}

TEST(TarTest, ReadsPaxGnuAndHardLinks) {
  const std::string long_name = std::string(120, 'g') + "/file";
  const std::string long_target = std::string(110, 'k');
  std::string archive =
      Entry("global", 'g', PaxRecord("comment", "ignored")) + Entry("./", '5') +
      Entry("pax", 'x', PaxRecord("path", "renamed.txt") + PaxRecord("mtime", "1234.5")) +
      Entry("short", '0', "pax body") + Entry("././@LongLink", 'L', long_name + '\0') +
      Entry("trunc", '0', "gnu body") + Entry("././@LongLink", 'K', long_target + '\0') +
      Entry("glink", '2', "", "trunc") + Entry("hard", '1', "", "renamed.txt") +
      Entry("./a/./b/", '5') + Header("ro/", '5', 0, "", 0555) + Entry("ro/inside", '0', "ro") +
      Entry("old-style-dir/", '\0') + kEnd;
  TempDir base;
  std::string dest = Sub(base, "out");
  Status status = ExtractTar(archive, dest, ExtractLimits());
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(ReadFile(dest + "/renamed.txt"), "pax body");
  EXPECT_FALSE(fs::exists(dest + "/short"));
  struct stat st;
  ASSERT_EQ(stat((dest + "/renamed.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(ReadFile(dest + "/" + long_name), "gnu body");
  EXPECT_EQ(fs::read_symlink(dest + "/glink").string(), long_target);
  EXPECT_EQ(ReadFile(dest + "/hard"), "pax body");
  EXPECT_TRUE(fs::is_directory(dest + "/a/b"));
  EXPECT_TRUE(fs::is_directory(dest + "/old-style-dir"));
  EXPECT_EQ(ReadFile(dest + "/ro/inside"), "ro");
  ASSERT_EQ(stat((dest + "/ro").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0555u);
  chmod((dest + "/ro").c_str(), 0755);  // so that TempDir can remove it without root
}

TEST(TarTest, ExtractionDoesNotFollowSymlinksAlreadyInDestination) {
  TempDir base;
  std::string dest = Sub(base, "dest");
  fs::create_directories(dest);
  fs::create_directories(Sub(base, "outside"));
  ASSERT_EQ(symlink(Sub(base, "outside").c_str(), (dest + "/sub").c_str()), 0);
  Status status = ExtractTar(Entry("sub/file", '0', "x") + kEnd, dest, ExtractLimits());
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(fs::exists(Sub(base, "outside/file")));
}

TEST(TarTest, ReadsArchivesFromGnuTar) {
  if (system("tar --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no tar program";
  TempDir source;
  MakeSourceTree(source);
  for (const char* format : {"posix", "gnu", "ustar"}) {
    TempDir work;
    std::string tarball = Sub(work, "context.tar");
    std::string command = std::string("tar --format=") + format + " -C '" + source.path() +
                          "' -cf '" + tarball + "' . 2>/dev/null";
    if (std::string(format) == "ustar") {
      // ustar cannot store the 150-byte name or the 128-byte link target; leave them out.
      command = std::string("tar --format=ustar --exclude=./long --exclude=./longlink -C '") +
                source.path() + "' -cf '" + tarball + "' .";
    }
    ASSERT_EQ(system(command.c_str()), 0) << command;
    Status status = ExtractTar(ReadFile(tarball), Sub(work, "out"), ExtractLimits());
    ASSERT_TRUE(status.ok()) << format << ": " << status.message();
    EXPECT_EQ(ReadFile(Sub(work, "out/bin/run.sh")), "#!/bin/sh\necho hi\n") << format;
    EXPECT_EQ(fs::read_symlink(Sub(work, "out/link")).string(), "src/nested") << format;
    EXPECT_EQ(fs::status(Sub(work, "out/bin/run.sh")).permissions() & fs::perms::all,
              static_cast<fs::perms>(0755))
        << format;
  }
}

TEST(TarTest, GnuTarReadsOurArchives) {
  if (system("tar --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no tar program";
  TempDir source;
  MakeSourceTree(source);
  TempDir work;
  std::ofstream(Sub(work, "ours.tar"), std::ios::binary) << ArchiveOf(source.path());
  fs::create_directories(Sub(work, "out"));
  std::string command = "tar -C '" + Sub(work, "out") + "' -xf '" + Sub(work, "ours.tar") + "'";
  ASSERT_EQ(system(command.c_str()), 0) << command;
  EXPECT_EQ(Snapshot(Sub(work, "out")).size(), Snapshot(source.path()).size());
  EXPECT_EQ(ReadFile(Sub(work, "out/long/" + std::string(150, 'n') + ".txt")), "pax");
  EXPECT_EQ(fs::read_symlink(Sub(work, "out/longlink")).string(),
            "missing/" + std::string(120, 't'));
}

}  // namespace
}  // namespace manifold
