using KvmPresync.Libvirt.Guest;

namespace KvmPresync.Tests.LinuxGuest;

public sealed class HeartbeatLineTests
{
    private static string Line(ulong seq, ulong prev, ulong sum, ulong progress = 7, ulong errors = 0) =>
        $"KPHB seq={seq} prev={prev:x16} sum={sum:x16} progress={progress} selfcheck_errors={errors} t_ms={seq * 100}";

    [Fact]
    public void A_heartbeat_line_parses_with_a_carriage_return_and_text_before_it()
    {
        Assert.True(HeartbeatLine.TryParse("\u001b[0mKPHB seq=3 prev=98233430a6a80e31 sum=289cbea4e6bb38c5 progress=12 selfcheck_errors=1 t_ms=330 extra=5\r", out HeartbeatLine hb));
        Assert.Equal(new HeartbeatLine(3, 0x98233430a6a80e31, 0x289cbea4e6bb38c5, 12, 1, 330), hb);
        Assert.True(HeartbeatLine.TryParse(hb.ToString(), out HeartbeatLine again));
        Assert.Equal(hb, again);
    }

    [Theory]
    [InlineData("[    2.3] Run /init as init process")]
    [InlineData("KPHB seq=3 prev=98233430a6a80e31 sum=289cbea4e6bb38c5 progress=12")]              // no selfcheck_errors
    [InlineData("KPHB seq=3 prev=98233430a6a80e3 sum=289cbea4e6bb38c5 progress=12 selfcheck_errors=0")] // 15 hex digits
    [InlineData("KPHB seq=-3 prev=98233430a6a80e31 sum=289cbea4e6bb38c5 progress=12 selfcheck_errors=0")]
    [InlineData("KPHB seq=3 prev=98233430a6a80e31 sum=289cbea4e6bb38c5 progress=1KPHB seq=4")]      // two lines run together
    public void Other_or_damaged_lines_are_not_heartbeats(string line) => Assert.False(HeartbeatLine.TryParse(line, out _));

    [Fact]
    public void The_console_reports_a_missing_heartbeat_and_a_broken_chain_and_counts_the_run_since()
    {
        var c = new LinuxGuestConsole();
        c.FeedText(Line(1, 0, 0xa) + "\r\n" + "[  3.0] a kernel message\r\nKPREADY fill_pages=1 t_ms=5\r\n" + Line(2, 0xa, 0xb) + "\r\n" + Line(3, 0xb, 0xc)[..20]);
        Assert.Equal(2, c.Heartbeats.Count);                 // the third line is not finished yet
        c.FeedText(Line(3, 0xb, 0xc)[20..] + "\n");
        Assert.Equal(3, c.CurrentRun);
        Assert.Equal(1, c.FirstHeartbeatAfterReady);
        Assert.Empty(c.Gaps);

        c.Feed(Line(5, 0xd, 0xe));                           // seq 4 lost
        c.Feed(Line(6, 0xe, 0xf));
        c.Feed(Line(7, 0x1234, 0x10));                       // prev is not the last sum: a different chain
        Assert.Equal(2, c.Gaps.Count);
        Assert.Equal("seq 5 after 3 (1 missing)", c.Gaps[0].Reason);
        Assert.Contains("prev 0000000000001234 is not the previous sum 000000000000000f", c.Gaps[1].Reason);
        Assert.Equal(1, c.CurrentRun);
        Assert.Contains("[  3.0] a kernel message", c.OtherLines);
    }

    [Fact]
    public void Polling_a_growing_file_reads_each_line_once()
    {
        string path = Path.GetTempFileName();
        try
        {
            var c = new LinuxGuestConsole();
            File.WriteAllText(path, Line(1, 0, 0xa) + "\n" + Line(2, 0xa, 0xb)[..10]);
            c.Poll(path);
            File.AppendAllText(path, Line(2, 0xa, 0xb)[10..] + "\nKPEXIT code=0\n");
            c.Poll(path);
            c.Poll(path);
            Assert.Equal(2, c.Heartbeats.Count);
            Assert.Empty(c.Gaps);
            Assert.Equal("KPEXIT code=0", c.ExitLine);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_line_cut_by_a_migration_continues_in_the_destinations_file_and_each_heartbeat_knows_its_file()
    {
        string dir = Directory.CreateTempSubdirectory("kp-console.").FullName;
        string source = Path.Combine(dir, "source.log"), destination = Path.Combine(dir, "destination.log");
        try
        {
            var c = new LinuxGuestConsole();
            File.WriteAllText(source, Line(1, 0, 0xa) + "\n" + Line(2, 0xa, 0xb)[..15]);   // paused mid-line
            c.Poll(source);
            c.Poll(destination);                                                     // not there yet
            File.WriteAllText(destination, Line(2, 0xa, 0xb)[15..] + "\n" + Line(3, 0xb, 0xc) + "\n");
            c.Poll(source);
            c.Poll(destination);
            Assert.Equal(3, c.Heartbeats.Count);
            Assert.Empty(c.Gaps);
            Assert.Equal([source, destination, destination], c.Arrivals.Select(a => a.File));
            Assert.True(c.Arrivals[0].Timestamp <= c.Arrivals[1].Timestamp);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void The_handover_is_verified_only_for_an_unbroken_chain_with_enough_heartbeats_on_the_destination()
    {
        string dir = Directory.CreateTempSubdirectory("kp-handover.").FullName;
        int console = 0;
        HeartbeatHandover Migrated(int onSource, int onDestination, ulong skip = 0, ulong errors = 0)
        {
            console++;
            string source = Path.Combine(dir, $"{console}.source.log"), destination = Path.Combine(dir, $"{console}.destination.log");
            var c = new LinuxGuestConsole();
            ulong seq = 1;
            for (int i = 0; i < onSource; i++, seq++)
            {
                File.AppendAllText(source, Line(seq, seq - 1, seq) + "\n");
                c.Poll(source);
            }
            seq += skip;
            for (int i = 0; i < onDestination; i++, seq++)
            {
                File.AppendAllText(destination, Line(seq, seq - 1, seq, errors: errors) + "\n");
                c.Poll(destination);
            }
            return HeartbeatHandover.Check(c, source, destination, minimumOnDestination: 3);
        }
        try
        {
            HeartbeatHandover ok = Migrated(5, 3);
            Assert.True(ok.Verified, ok.Failure);
            Assert.Equal((5, 3, 5UL, 6UL), (ok.SourceHeartbeats, ok.DestinationHeartbeats, ok.LastOnSource!.Value.Seq, ok.FirstOnDestination!.Value.Seq));
            Assert.Equal(100, ok.GuestGapMs);                       // t_ms = seq * 100
            Assert.NotNull(ok.StallMs);

            Assert.Contains("only 2 heartbeat(s) on the destination", Migrated(5, 2).Failure);
            HeartbeatHandover lost = Migrated(5, 3, skip: 1);
            Assert.False(lost.Verified);
            Assert.Equal(["seq 7 after 5 (1 missing)"], lost.Gaps);
            Assert.Contains("self-check error", Migrated(5, 3, errors: 2).Failure);
            Assert.Equal("no heartbeat on the source console", Migrated(0, 3).Failure);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
